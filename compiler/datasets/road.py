"""Generated road images for the ALVINN example: a road seen from the driver's seat on a 30x32 grid.

After Pomerleau's ALVINN (the road-following network of the course material): each image shows
a road with random offset and curvature, narrowing towards the horizon, on a noisy background.
The target is the steering direction: where the road's centre lies at a look-ahead distance,
from -1 (hard left) to 1 (hard right). Deterministic for a given seed; nothing is downloaded.
"""

from __future__ import annotations

import numpy as np

from .registry import register

ROWS, COLS = 30, 32
LOOK_AHEAD = 0.6  # fraction of the way to the horizon where the driver aims


def road_centre(offset: np.ndarray, curvature: np.ndarray, ahead: np.ndarray) -> np.ndarray:
    """Column of the road's centre, `ahead` in [0, 1] from the bottom row to the top."""
    return (COLS - 1) / 2 + offset + 12.0 * curvature * ahead**2


def generate(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(images (count, 1, 30, 32) in [0, 1], steering (count, 1) in [-1, 1])."""
    rng = np.random.default_rng(seed)
    offset = rng.uniform(-7.0, 7.0, count)[:, None, None]
    curvature = rng.uniform(-1.0, 1.0, count)[:, None, None]
    ahead = ((ROWS - 1 - np.arange(ROWS)) / (ROWS - 1))[None, :, None]
    cols = np.arange(COLS)[None, None, :]
    centre = road_centre(offset, curvature, ahead)
    half_width = 5.0 * (1.0 - 0.7 * ahead)
    inside = (half_width - np.abs(cols - centre)) / 0.6  # soft edges, in pixels
    road = 1.0 / (1.0 + np.exp(-inside))
    background = 0.15 + 0.1 * rng.random((count, 1, 1))
    images = background + (0.85 - background) * road + rng.normal(0.0, 0.04, (count, ROWS, COLS))
    target = (road_centre(offset, curvature, np.asarray(LOOK_AHEAD)) - (COLS - 1) / 2) / 16.0
    steering = np.clip(target.reshape(count, 1), -1.0, 1.0)
    return np.clip(images, 0.0, 1.0).astype(np.float32)[:, None], steering.astype(np.float32)


@register("road", "builtin", "generated 30x32 road images; the target is the steering direction")
def make(seed: int, count: int = 2000):
    return (*generate(count, seed), None)
