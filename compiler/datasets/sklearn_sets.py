"""scikit-learn's bundled data sets: read from files installed with it, so nothing is downloaded.

scikit-learn is imported only when one is loaded, which keeps `specc check` fast.
"""

from __future__ import annotations

import numpy as np

from .registry import register


def _load(name: str):
    import sklearn.datasets as skd

    bunch = getattr(skd, f"load_{name}")()
    return bunch, bunch.target.astype(np.int64), [str(n) for n in bunch.target_names]


@register("digits", "builtin", "8x8 pictures of handwritten digits in [0, 1]")
def digits(seed: int, resize: tuple[int, int] | None = None):
    """(N, 1, 8, 8) pictures, or bilinearly resized to `resize` ([height, width])."""
    bunch, y, labels = _load("digits")
    x = (bunch.images / 16.0).astype(np.float32)[:, None]
    if resize is not None:
        import torch

        x = torch.nn.functional.interpolate(
            torch.from_numpy(x), size=tuple(resize), mode="bilinear", align_corners=False
        ).numpy()
    return x, y, labels


def _table(name: str, description: str) -> None:
    @register(name, "builtin", description)
    def make(seed: int):
        bunch, y, labels = _load(name)
        return bunch.data.astype(np.float32), y, labels


_table("iris", "150 iris flowers, 4 measurements, 3 species")
_table("wine", "178 wines, 13 chemical measurements, 3 cultivars")
_table("breast_cancer", "569 breast tumours, 30 features, malignant or benign")
