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


def write_grid(rows: list[np.ndarray], path: Path, scale: int = 4) -> None:
    """Rows of images as one PNG, tiles separated by gray lines, each pixel drawn scale x scale.
    Written with zlib alone (png_bytes): fast enough for every epoch."""
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
    pixels = (grid.clip(0, 1) * 255).round().astype(np.uint8).repeat(scale, axis=0).repeat(scale, axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(".tmp." + path.name)
    tmp.write_bytes(png_bytes(pixels))
    os.replace(tmp, path)
