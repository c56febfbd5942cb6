"""Captioned pictures for seq2seq: 24x24 grayscale images of one shape and a caption naming its
size, kind and place ("big circle on the left"), for an image-to-text decoder.

Each shape is drawn at a jittered centre with a jittered size, plus Gaussian noise, so no two
pictures are the same while the caption stays a function of what is drawn. Deterministic for a seed.
"""

from __future__ import annotations

import numpy as np

from .. import limits
from ..diagnostics import DataProblem
from .registry import register

IMAGE_SIZE = 24
SHAPES = ("circle", "square", "triangle", "cross")
SIZES = ("small", "big")
PLACES = ("left", "right", "top", "bottom")
CENTRES = {"left": (12, 6), "right": (12, 17), "top": (6, 12), "bottom": (17, 12)}  # (row, col)


def generate(count: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """(pictures (count, 1, 24, 24) float32, captions)."""
    rng = np.random.default_rng(seed)
    n = IMAGE_SIZE
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32)
    images, captions = np.zeros((count, 1, n, n), dtype=np.float32), []
    for k in range(count):
        shape, size, place = rng.choice(SHAPES), rng.choice(SIZES), rng.choice(PLACES)
        cy, cx = np.array(CENTRES[place]) + rng.uniform(-1.0, 1.0, 2)
        r = (2.2 if size == "small" else 4.6) * rng.uniform(0.9, 1.1)
        dy, dx = yy - cy, xx - cx
        if shape == "circle":
            mask = dy**2 + dx**2 <= r**2
        elif shape == "square":
            mask = (abs(dy) <= r * 0.85) & (abs(dx) <= r * 0.85)
        elif shape == "triangle":
            mask = (dy <= r * 0.8) & (dy >= -r) & (abs(dx) <= (dy + r) * 0.6)
        else:
            mask = ((abs(dy) <= r) & (abs(dx) <= r * 0.3)) | ((abs(dx) <= r) & (abs(dy) <= r * 0.3))
        images[k, 0] = mask + rng.normal(0.0, 0.1, (n, n))
        captions.append(f"{size} {shape} on the {place}")
    return images, captions


@register("shapes", "pairs", "24x24 pictures of one shape and their captions")
def make(seed: int, count: int = 4000):
    most = limits.GENERATED_VALUES.value
    if count * IMAGE_SIZE**2 > most:  # refused before drawing one
        raise DataProblem(
            "count",
            limits.GENERATED_VALUES.exceeded(
                f"{count:,} pictures of {IMAGE_SIZE}x{IMAGE_SIZE} make {count * IMAGE_SIZE**2:,} "
                "values to generate at compile time"
            ),
        )
    return generate(count, seed)
