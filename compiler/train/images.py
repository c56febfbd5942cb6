"""Pictures of a generative model's work: rows of images as one PNG (samples/ every epoch)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from specc.runtime.png import png_bytes


def as_images(x: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) or (N, F) -> (N, H, W[, 3]) in [0, 1] for drawing (vectors become strips)."""
    x = x.detach().float().cpu()
    if x.dim() == 2:
        x = x[:, None, None, :]
    x = (
        x.clamp(0, 1)
        if float(x.min()) >= -0.05 and float(x.max()) <= 1.05
        else (x - x.min()) / (x.max() - x.min() + 1e-12)
    )
    return x[:, 0].numpy() if x.shape[1] == 1 else x[:, :3].permute(0, 2, 3, 1).numpy()


# Per-epoch sample sheets: at most this many per run, spread evenly over it (the first and the
# last epoch included), so a long run does not leave thousands of pictures.
MAX_SAMPLE_SHEETS = 50


def sample_sheet(folder: Path, epoch: int, epochs: int) -> Path | None:
    """samples/epoch_NNN.png if this epoch draws one, else None; numbers are zero-padded to the
    run's last epoch (at least three digits), so the names sort in epoch order."""
    if epochs > MAX_SAMPLE_SHEETS:
        picked = {1 + round(k * (epochs - 1) / (MAX_SAMPLE_SHEETS - 1)) for k in range(MAX_SAMPLE_SHEETS)}
        if epoch not in picked:
            return None
    return folder / "samples" / f"epoch_{epoch:0{max(3, len(str(epochs)))}d}.png"


# A 3x5 bitmap font for row labels (letters drawn as capitals, digits, a few signs): the sheets
# are written without an imaging library, so their labels are too. FONT_ROWS[r] holds row r of
# every glyph, in FONT's order, three pixels each ("#" inked), one space apart.
FONT = "abcdefghijklmnopqrstuvwxyz0123456789 -.()/"
FONT_ROWS = (
    ".#. ##. .## ##. ### ### .## #.# ### ..# #.# #.. #.# ##. .#. ##. .#. ##. .## ### #.# #.# #.# #.# #.# ### ### .#. ##. ##. #.# ### .## ### ### ### ... ... ... .#. .#. ..#",
    "#.# #.# #.. #.# #.. #.. #.. #.# .#. ..# #.# #.. ### #.# #.# #.# #.# #.# #.. .#. #.# #.# #.# #.# #.# ..# #.# ##. ..# ..# #.# #.. #.. ..# #.# #.# ... ... ... #.. ..# ..#",
    "### ##. #.. #.# ##. ##. #.# ### .#. ..# ##. #.. ### #.# #.# ##. #.# ##. .#. .#. #.# #.# ### .#. .#. .#. #.# .#. .#. .#. ### ##. ### .#. ### ### ... ### ... #.. ..# .#.",
    "#.# #.# #.. #.# #.. #.. #.# #.# .#. #.# #.# #.. #.# #.# #.# #.. ##. #.# ..# .#. #.# #.# ### #.# .#. #.. #.# .#. #.. ..# ..# ..# #.# .#. #.# ..# ... ... ... #.. ..# #..",
    "#.# ##. .## ##. ### #.. .## #.# ### .#. #.# ### #.# #.# .#. #.. .## #.# ##. .#. ### .#. #.# #.# .#. ### ### ### ### ##. ..# ##. ### .#. ### ##. ... ... .#. .#. .#. #..",
)


def text_pixels(text: str) -> np.ndarray:
    """(5, 4 * len(text) - 1) float32: 1 where the letters are inked (unknown signs as blanks)."""
    columns = []
    for k, char in enumerate(text.lower()):
        at = 4 * FONT.find(char) if char in FONT else 4 * FONT.index(" ")
        columns.append(np.array([[c == "#" for c in row[at : at + 3]] for row in FONT_ROWS], dtype=np.float32))
        if k < len(text) - 1:
            columns.append(np.zeros((5, 1), dtype=np.float32))
    return np.concatenate(columns, axis=1) if columns else np.zeros((5, 0), dtype=np.float32)


def write_grid(rows: list[np.ndarray], path: Path, scale: int = 4, labels: list[str] | None = None) -> None:
    """Rows of images as one PNG, tiles separated by gray lines, each pixel drawn scale x scale;
    `labels` names the rows in a white column on the left (dark letters, 3x5 font, enlarged with
    the tiles). Written with zlib alone (png_bytes): fast enough for every epoch."""
    h, w = rows[0].shape[1:3]
    color = rows[0].ndim == 4
    cols = max(len(r) for r in rows)
    grid = np.full(
        (len(rows) * (h + 1) + 1, cols * (w + 1) + 1) + ((3,) if color else ()),
        0.5,
        dtype=np.float32,
    )
    for r, images in enumerate(rows):
        for c, image in enumerate(images):
            grid[1 + r * (h + 1) : 1 + r * (h + 1) + h, 1 + c * (w + 1) : 1 + c * (w + 1) + w] = image
    if labels:
        size = max(1, h // 8)  # letters grow with the tiles: 5 rows of the font per 8 of a tile
        inked = [text_pixels(t).repeat(size, axis=0).repeat(size, axis=1) for t in labels]
        width = max(i.shape[1] for i in inked) + 4 * size
        column = np.ones((grid.shape[0], width) + grid.shape[2:], dtype=np.float32)
        for r, ink in enumerate(inked):
            top = 1 + r * (h + 1) + max(0, (h - ink.shape[0]) // 2)
            part = column[top : top + ink.shape[0], 2 * size : 2 * size + ink.shape[1]]
            part[...] = (1.0 - ink[: part.shape[0], : part.shape[1]]).reshape(part.shape[:2] + (1,) * (part.ndim - 2))
        grid = np.concatenate([column, grid], axis=1)
    pixels = (grid.clip(0, 1) * 255).round().astype(np.uint8).repeat(scale, axis=0).repeat(scale, axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(".tmp." + path.name)
    tmp.write_bytes(png_bytes(pixels))
    os.replace(tmp, path)
