"""task: classification: one class per input (or per position of a sequence tagger).

The last layer gives class scores: logits, or probabilities after softmax/log_softmax; one
unit is a binary classifier (a logit, or a probability after sigmoid). Trained with
cross-entropy (binary cross-entropy for one unit), scored by accuracy and top-k accuracy;
served by `specc.runtime.Model.predict` (classes, labels, probabilities).
"""

from __future__ import annotations

from .base import Output, Task, token_scores


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

    def read_examples(self, run, data, spec, model):
        """A split, the common formats, or labelled texts (.jsonl / .csv / .tsv) for a model
        trained on text."""
        from ..evaluate import read_labelled_texts

        return read_labelled_texts(run, data, spec, model, super().read_examples)

    def evaluate(self, job):
        """A class per input; a sequence tagger (a class per position) is scored per token."""
        if job.out.ndim == 3 and job.examples.y.ndim == 2:
            return token_scores(job.out, job.examples.y, job.spec["train"], ("accuracy",))
        return super().evaluate(job)
