"""task: classification: one class per input (or per position of a sequence tagger).

The last layer gives class scores: logits, or probabilities after softmax/log_softmax; one
unit is a binary classifier (a logit, or a probability after sigmoid). Trained with
cross-entropy (binary cross-entropy for one unit), scored by accuracy and top-k accuracy;
served by `specc.runtime.Model.predict` (classes, labels, probabilities).
"""

from __future__ import annotations

from .base import Output, Task


class Classification(Task):
    name = "classification"
    summary = "class scores for each input, served by predict (classes, labels, probabilities)"
    losses = ("cross_entropy", "binary_cross_entropy")

    def check(self, parsed):
        labels = parsed.spec.labels
        if labels is not None and len(set(labels)) != len(labels):
            return [parsed.source.error(("labels",), "labels must be distinct")]
        return []

    def default_loss(self, output: Output) -> str:
        return "binary_cross_entropy" if output.kind.startswith("binary") else "cross_entropy"
