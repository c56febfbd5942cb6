"""scikit-learn's bundled data sets: read from files installed with it, so nothing is downloaded.

scikit-learn is imported only when one is loaded, which keeps `specc check` fast; digits, the
set most specs train on, is read straight from its file (importing scikit-learn takes 2 s).
"""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np

from .registry import register


def _load(name: str):
    import sklearn.datasets as skd

    bunch = getattr(skd, f"load_{name}")()
    return bunch, bunch.target.astype(np.int64), [str(n) for n in bunch.target_names]


def _digits() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(N, 8, 8) counts, targets and labels, as load_digits gives them: its digits.csv.gz (64
    counts and the digit per row), found without importing scikit-learn; else load_digits."""
    found = importlib.util.find_spec("sklearn")  # locates the package, runs none of it
    folders = list(found.submodule_search_locations or []) if found else []
    path = Path(folders[0], "datasets", "data", "digits.csv.gz") if folders else None
    if path is None or not path.is_file():
        bunch, y, labels = _load("digits")
        return bunch.images, y, labels
    with gzip.open(path, "rt") as f:
        rows = np.loadtxt(f, delimiter=",")
    return rows[:, :-1].reshape(-1, 8, 8), rows[:, -1].astype(np.int64), [str(d) for d in range(10)]


DIGITS_RAW = (
    "8x8 counts of ink (0..16): a 32x32 black-and-white bitmap of the digit, ink 1, summed in "
    "4x4 blocks (UCI optdigits, as scikit-learn's load_digits holds them)"
)
DIGITS_RESIZE = {"op": "resize", "mode": "bilinear", "align_corners": False, "antialias": False}


def digits_preprocess(resize: tuple[int, int] | None = None) -> dict:
    """The steps from the raw counts to a picture: scaled by 1/16, then resized bilinearly."""
    steps = [{"op": "scale", "by": 1 / 16}]
    if resize is not None:
        steps.append(DIGITS_RESIZE | {"to": list(resize)})
    return {"source": "digits", "raw": DIGITS_RAW, "raw_dims": [1, 8, 8], "steps": steps}


@register(
    "digits",
    "builtin",
    "8x8 pictures of handwritten digits in [0, 1]",
    preprocess=digits_preprocess,
)
def digits(seed: int, resize: tuple[int, int] | None = None):
    """(N, 1, 8, 8) pictures, or bilinearly resized to `resize` ([height, width])."""
    images, y, labels = _digits()
    x = (images / 16.0).astype(np.float32)[:, None]
    if resize is not None:
        import torch

        x = torch.nn.functional.interpolate(
            torch.from_numpy(x), size=tuple(resize), mode="bilinear", align_corners=False
        ).numpy()
    return x, y, labels


def _table(name: str, description: str) -> None:
    def columns() -> dict:
        import sklearn.datasets as skd

        names = getattr(skd, f"load_{name}")().feature_names
        return {"source": name, "columns": [str(c) for c in names]}

    @register(name, "builtin", description, preprocess=columns)
    def make(seed: int):
        bunch, y, labels = _load(name)
        return bunch.data.astype(np.float32), y, labels


_table("iris", "150 iris flowers, 4 measurements, 3 species")
_table("wine", "178 wines, 13 chemical measurements, 3 cultivars")
_table("breast_cancer", "569 breast tumours, 30 features, malignant or benign")
