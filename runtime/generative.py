"""Autoencoders and VAEs served through ONNX Runtime: encode, decode, reconstruct, sample,
interpolate; and image grids written as PNG with the standard library (no imaging package).

    ae = specc.runtime.Autoencoder("runs/vae_digits")
    codes = ae.encode(images)                    # the mean, for a VAE
    grid = ae.sample(64, seed=0)                 # draws from N(0, I) decoded (VAE only)
    specc.runtime.save_grid(grid, "grid.png")
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .contracts import Meta
from .errors import InputError, ModelLoadError
from .png import png_bytes
from .session import Model


class Autoencoder:
    """The encoder.onnx and decoder.onnx of a `specc train` folder for task: autoencoder."""

    def __init__(self, folder: str | Path, device: str = "auto", threads: int | None = None):
        folder = Path(folder)
        for part in ("encoder", "decoder"):
            if not (folder / f"{part}.onnx").is_file():
                raise ModelLoadError(
                    f"no {part}.onnx in {folder}: encode, decode and sample need an autoencoder "
                    "trained with task: autoencoder"
                )
        self.encoder = Model(folder / "encoder.onnx", device=device, threads=threads)
        self.decoder = Model(folder / "decoder.onnx", device=device, threads=threads)
        latent = json.loads(self.decoder.metadata.get(Meta.LATENT, "{}"))
        self.dim = int(latent.get("dim", self.decoder.inputs[0].shape[1]))
        self.variational = latent.get("type") == "gaussian"

    def __repr__(self) -> str:
        kind = "VAE" if self.variational else "autoencoder"
        return f"<specc.runtime.Autoencoder {self.encoder.path.parent}: {kind}, code of {self.dim}>"

    def encode(self, x, log_var: bool = False):
        """Codes of a batch of inputs: the latent mean for a VAE (and its log-variance if asked)."""
        out = self.encoder.run(**{self.encoder.inputs[0].name: x})
        values = list(out.values())
        if self.variational and log_var:
            return values[0], values[1]
        return values[0]

    def decode(self, z) -> np.ndarray:
        z = np.asarray(z, dtype=np.float32)
        if z.ndim != 2 or z.shape[1] != self.dim:
            raise InputError(f"codes must have shape (batch, {self.dim}), got {z.shape}")
        return self.decoder(z)

    def reconstruct(self, x) -> np.ndarray:
        return self.decode(self.encode(x))

    def sample(self, n: int, seed: int | None = None) -> np.ndarray:
        """n draws from the prior N(0, I), decoded: only a VAE has a prior to draw from."""
        if not self.variational:
            raise InputError(
                "sampling needs a VAE latent (latent: {type: gaussian, ...}); a plain "
                "autoencoder's codes follow no known distribution"
            )
        if not isinstance(n, int) or n < 1:
            raise InputError(f"n must be a whole number >= 1, got {n!r}")
        z = np.random.default_rng(seed).standard_normal((n, self.dim)).astype(np.float32)
        return self.decode(z)

    def interpolate(self, a, b, steps: int = 8) -> np.ndarray:
        """Decoded points on the straight line between the codes of inputs a and b."""
        if steps < 2:
            raise InputError(f"steps must be at least 2, got {steps}")
        za, zb = self.encode(np.asarray(a)[None]), self.encode(np.asarray(b)[None])
        t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
        return self.decode((1 - t) * za + t * zb)


class Generator:
    """A GAN's generator.onnx: `sample(n, seed)` decodes draws of z ~ N(0, I)."""

    def __init__(self, folder: str | Path, device: str = "auto", threads: int | None = None):
        path = Path(folder)
        path = path / "generator.onnx" if path.is_dir() else path
        if not path.is_file():
            raise ModelLoadError(f"no generator.onnx at {folder}: sampling needs a GAN (task: gan)")
        self.model = Model(path, device=device, threads=threads)
        self.dim = int(self.model.inputs[0].shape[1])

    def __repr__(self) -> str:
        return f"<specc.runtime.Generator {self.model.path}: noise of {self.dim}>"

    def sample(self, n: int, seed: int | None = None) -> np.ndarray:
        if not isinstance(n, int) or n < 1:
            raise InputError(f"n must be a whole number >= 1, got {n!r}")
        z = np.random.default_rng(seed).standard_normal((n, self.dim)).astype(np.float32)
        return self.model(z)


def grid_image(images, columns: int | None = None, gap: int = 1) -> np.ndarray:
    """(N, C, H, W) or (N, H, W) in [0, 1] -> one uint8 picture, tiles separated by gray lines."""
    x = np.asarray(images, dtype=np.float32)
    if x.ndim == 2:  # vectors: one strip each
        x = x[:, None, None, :]
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise InputError(f"cannot draw images of shape {x.shape[1:]}")
    n, c, h, w = x.shape
    columns = columns or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / columns))
    out = np.full((rows * (h + gap) + gap, columns * (w + gap) + gap, c), 0.5, dtype=np.float32)
    for i in range(n):
        r, k = divmod(i, columns)
        top, left = gap + r * (h + gap), gap + k * (w + gap)
        out[top : top + h, left : left + w] = x[i].transpose(1, 2, 0)
    return (np.clip(out, 0, 1) * 255).round().astype(np.uint8)


def save_png(picture: np.ndarray, path: str | Path, scale: int = 1) -> Path:
    """Write an (H, W) or (H, W, 1|3) uint8 array as a PNG, each pixel drawn scale x scale."""
    a = np.asarray(picture, dtype=np.uint8)
    if scale > 1:
        a = a.repeat(scale, axis=0).repeat(scale, axis=1)
    path = Path(path)
    path.write_bytes(png_bytes(a))
    return path


def save_grid(images, path: str | Path, columns: int | None = None, scale: int = 4) -> Path:
    """A grid of images as a PNG, each pixel drawn as scale x scale."""
    return save_png(grid_image(images, columns), path, scale)
