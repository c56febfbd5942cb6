"""Multi-label models (task: multilabel) through ONNX Runtime: several independent yes/no labels
per input, each kept when its probability reaches a threshold.

    ml = specc.runtime.MultiLabel("runs/multilabel_digits", threshold=0.5)
    ml.predict(images).labels       # [['even', 'greater_than_4'], ['prime'], ...]
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import InputError, ModelLoadError
from .session import INTERPRETERS, Model, Predictions


@dataclass(frozen=True)
class LabelSets(Predictions):
    """Which labels hold for each input: probabilities (N, K) and present (N, K) at `threshold`."""

    names: list[str]
    probabilities: np.ndarray
    present: np.ndarray
    threshold: float

    @property
    def labels(self) -> list[list[str]]:
        return [[n for n, on in zip(self.names, row, strict=True) if on] for row in self.present]

    def rows(self) -> list[dict]:
        return [
            {"labels": held, "probabilities": dict(zip(self.names, map(float, p), strict=True))}
            for held, p in zip(self.labels, self.probabilities, strict=True)
        ]

    def lines(self) -> list[str]:
        return [
            f"{i}\t{','.join(held) or '(none)'}\t"
            + " ".join(f"{n} {p:.4f}" for n, p in zip(self.names, probs, strict=True))
            for i, (held, probs) in enumerate(zip(self.labels, self.probabilities, strict=True))
        ]


def label_sets(model: Model, output: np.ndarray, threshold: float = 0.5) -> LabelSets:
    """A multi-label model's raw output (logits, or sigmoid probabilities) -> LabelSets."""
    if not 0.0 < threshold < 1.0:
        raise InputError(f"threshold must lie between 0 and 1, got {threshold}")
    out = np.asarray(output, dtype=np.float64)
    probs = 1.0 / (1.0 + np.exp(-out)) if model.output_kind == "multilabel_logits" else out
    names = model.labels or [str(k) for k in range(probs.shape[1])]
    return LabelSets(names, probs, probs >= threshold, threshold)


INTERPRETERS["multilabel"] = label_sets


class MultiLabel(Model):
    """A trained multi-label model (a `specc train` folder or its model.onnx)."""

    def __init__(self, path: str | Path, threshold: float = 0.5, **options):
        super().__init__(path, **options)
        if self.task != "multilabel":
            raise ModelLoadError(f"{self.path} is a {self.task} model, not a multi-label one")
        self.threshold = threshold

    def predict(self, x, threshold: float | None = None) -> LabelSets:
        return label_sets(self, self(x), self.threshold if threshold is None else threshold)
