"""The 8-3-8 encoder problem: the 8 one-hot patterns, each its own label, squeezed through 3 units."""

from __future__ import annotations

import numpy as np

from .registry import register


@register("one_hot", "builtin", "the 8 one-hot patterns of the 8-3-8 encoder")
def make(seed: int):
    """The same eight examples for every seed."""
    return np.eye(8, dtype=np.float32), np.arange(8), [str(i) for i in range(8)]
