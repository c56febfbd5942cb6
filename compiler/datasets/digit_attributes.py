"""Digit attributes: scikit-learn's 8x8 digits, each with three yes/no labels (even, greater
than 4, prime) that hold independently: a multi-label problem made offline from bundled files."""

from __future__ import annotations

import numpy as np

from .registry import register
from .sklearn_sets import digits, digits_preprocess

ATTRIBUTES = {  # label -> the digits it holds for
    "even": {0, 2, 4, 6, 8},
    "greater_than_4": {5, 6, 7, 8, 9},
    "prime": {2, 3, 5, 7},
}


@register(
    "digit_attributes",
    "builtin",
    "8x8 digits labelled even, greater_than_4 and prime (multi-label)",
    preprocess=digits_preprocess,
)
def make(seed: int, resize: tuple[int, int] | None = None):
    """(N, 1, 8, 8) pictures and (N, 3) multi-hot targets in the order of ATTRIBUTES."""
    x, digit, _ = digits(seed, resize)
    y = np.array([[d in held for held in ATTRIBUTES.values()] for d in digit], dtype=np.float32)
    return x, y, list(ATTRIBUTES)
