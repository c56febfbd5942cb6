"""The adding problem (Hochreiter & Schmidhuber 1997; used for the IRNN by Le et al. 2015).

Each example is a sequence of `length` steps with two channels: a random value in [0, 1), and a
marker that is 1 at exactly two steps (one in each half) and 0 elsewhere. The target is the sum
of the two marked values. A network must remember the first marked value across the sequence:
predicting the mean (1.0) scores a mean squared error of 1/6, about 0.167.
"""

from __future__ import annotations

import numpy as np

from .registry import register


def generate(count: int, length: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(x (count, length, 2), y (count, 1)), deterministic for a seed."""
    rng = np.random.default_rng(seed)
    values = rng.random((count, length))
    marks = np.zeros((count, length))
    half = length // 2
    first = rng.integers(0, half, count)
    second = rng.integers(half, length, count)
    rows = np.arange(count)
    marks[rows, first] = 1.0
    marks[rows, second] = 1.0
    x = np.stack([values, marks], axis=-1).astype(np.float32)
    y = (values[rows, first] + values[rows, second]).astype(np.float32)[:, None]
    return x, y


@register("adding", "builtin", "the adding problem's sequences: sum the two marked values")
def make(seed: int, count: int = 3000, length: int = 30):
    return (*generate(count, length, seed), None)
