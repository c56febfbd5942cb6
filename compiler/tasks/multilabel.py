"""task: multilabel: several independent yes/no labels per input (a picture can be a digit that
is even and greater than 4).

The last layer gives one score per label: logits, or probabilities after a sigmoid. Trained with
binary cross-entropy over every label; reported as label accuracy (labels right, per input),
exact (every label right), and micro / macro F1; served by `specc.runtime.MultiLabel`, whose
`predict` keeps the labels whose probability reaches a threshold.
"""

from __future__ import annotations

import numpy as np

from .base import Output, Task

METRICS = ("label_accuracy", "exact", "f1_micro", "f1_macro")


class Multilabel(Task):
    name = "multilabel"
    summary = "several independent yes/no labels per input, served by predict with a threshold"
    data_types = ("builtin", "npz")
    losses = ("binary_cross_entropy",)
    targets = "labels"
    target_dtype = "float32"
    runtime_class = "specc.runtime.MultiLabel"

    def plan_rules(self, parsed, inferred):
        i = inferred.order[-1]
        out = inferred.out_shapes[parsed.layers[i].name]
        labels = parsed.spec.labels
        if len(out) != 1 or not isinstance(out[0], int):
            message = f"a multi-label model ends in one score per label (batch, labels), this one gives {out}"
        elif labels is not None and out[0] != len(labels):
            message = f"the model gives {out[0]} scores, but labels: names {len(labels)}"
        else:
            return []
        hint = "end with {type: linear, out_features: NUMBER_OF_LABELS}"
        return [parsed.source.error(parsed.origins[i].path, message, hint)]

    def output(self, parsed, inferred) -> Output:
        last = parsed.layers[inferred.order[-1]]
        shape = inferred.out_shapes[last.name]
        kind = "multilabel_probabilities" if last.type == "sigmoid" else "multilabel_logits"
        return Output(kind, shape[-1] if shape else None, shape)

    def output_name(self, output: Output) -> str:
        return "probabilities" if output.kind == "multilabel_probabilities" else "logits"

    def loss_problem(self, output: Output, loss: str):
        return None  # one binary cross-entropy per label: any number of outputs

    def default_metrics(self, parsed) -> list[str]:
        return list(METRICS)

    def metrics(self, parsed) -> tuple[str, ...]:
        return METRICS

    def check_targets(self, y, ir):
        k = ir.num_classes
        if y.ndim != 2 or (k is not None and y.shape[1] != k):
            return f"multi-label targets are (examples, {k}) yes/no values, got {y.shape}"
        if not np.isin(y, (0, 1)).all():
            return "multi-label targets must be 0 or 1"
        return None

    def score(self, out, y, kind, train):
        """The loss and metrics as train.py defines them, in numpy, at threshold 0.5."""
        return scores(out, y, kind, train.get("metrics") or METRICS)


def scores(out: np.ndarray, y: np.ndarray, kind: str, metrics) -> dict[str, float]:
    out, y = out.astype(np.float64), y.astype(np.float64)
    if kind == "multilabel_logits":
        loss = np.maximum(out, 0) - out * y + np.log1p(np.exp(-np.abs(out)))
        predicted = out > 0
    else:
        p = np.clip(out, 1e-7, 1 - 1e-7)
        loss = -(y * np.log(p) + (1 - y) * np.log(1 - p))
        predicted = out >= 0.5
    right = predicted == (y > 0.5)
    tp = (predicted & (y > 0.5)).sum(axis=0)
    fp = (predicted & (y < 0.5)).sum(axis=0)
    fn = (~predicted & (y > 0.5)).sum(axis=0)
    every = {
        "label_accuracy": float(right.mean()),
        "exact": float(right.all(axis=1).mean()),
        "f1_micro": _f1(tp.sum(), fp.sum(), fn.sum()),
        "f1_macro": float(np.mean([_f1(*counts) for counts in zip(tp, fp, fn, strict=True)])),
    }
    return {"loss": float(loss.mean()), **{m: every[m] for m in metrics}}


def _f1(tp, fp, fn) -> float:
    """2TP / (2TP + FP + FN); 0 when the label is never predicted nor present."""
    denominator = 2 * tp + fp + fn
    return float(2 * tp / denominator) if denominator else 0.0
