"""The training plan: what `train:` means for this model, resolved and checked against its output.

`loss: auto` becomes the task's loss for this output, the metrics default by task, and the
monitored metric gets its direction. A loss, metric or monitor that cannot work with the model's
output (top-5 of a binary classifier, mse on class indices) is a located error here, before any
tensor exists. What differs by task comes from the task (`tasks/`), never from its name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .diagnostics import SpecError, did_you_mean
from .shapes import Inferred
from .spec import Parsed
from .tasks import TASKS, Output

HIGHER_IS_BETTER = ("accuracy", "elbo", "exact")  # and topK
CLASS_SCORES = ("logits", "probabilities", "log_probabilities")
TOP_K = re.compile(r"^top([2-9]|1[0-9]|20)$")


@dataclass(frozen=True)
class TrainPlan:
    output_kind: str  # logits | probabilities | log_probabilities | binary_logit | binary_probability | values
    num_classes: int | None
    loss: str  # cross_entropy | binary_cross_entropy | mse | l1 | huber | adversarial
    metrics: tuple[str, ...]
    monitor: str
    monitor_mode: str  # min | max
    output_shape: tuple = ()  # without the batch

    @property
    def reported(self) -> tuple[str, ...]:
        """Names a split reports: loss and the metrics."""
        return ("loss", *self.metrics)


def mode_of(metric: str) -> str:
    name = metric.split("_", 1)[-1]
    return "max" if name in HIGHER_IS_BETTER or name.startswith("top") else "min"


def plan(parsed: Parsed, inferred: Inferred) -> TrainPlan:
    task, train = parsed.task, parsed.spec.train
    errors = task.plan_rules(parsed, inferred)
    output = task.output(parsed, inferred)
    loss = task.default_loss(output) if train.loss.type == "auto" else train.loss.type
    errors += _loss_rules(parsed, output, loss)
    errors += _train_key_rules(parsed)
    metrics = train.metrics if train.metrics is not None else task.default_metrics(parsed)
    errors += _metric_rules(parsed, output, metrics)
    errors += _monitor_rules(parsed, metrics)
    if errors:
        raise SpecError(errors)
    return TrainPlan(
        output_kind=output.kind,
        num_classes=output.num_classes,
        loss=loss,
        metrics=tuple(metrics),
        monitor=train.monitor,
        monitor_mode=mode_of(train.monitor),
        output_shape=tuple(output.shape),
    )


def _loss_rules(parsed: Parsed, output: Output, loss: str) -> list:
    src, task = parsed.source, parsed.task
    errors = []
    if loss not in task.losses:
        errors.append(
            src.error(
                ("train", "loss"),
                f"loss '{loss}' does not fit task '{task.name}'",
                f"use one of: {', '.join(task.losses)}",
            )
        )
    elif problem := task.loss_problem(output, loss):
        errors.append(src.error(("train", "loss"), *problem))
    if parsed.spec.train.loss.label_smoothing and output.kind not in CLASS_SCORES:
        errors.append(
            src.error(("train", "loss", "label_smoothing"), "label smoothing needs cross_entropy")
        )
    return errors


def _train_key_rules(parsed: Parsed) -> list:
    """train: keys that only some tasks read (tbptt, teacher_forcing, gan) are refused elsewhere."""
    train, errors = parsed.spec.train, []
    for task in TASKS.values():
        for key, why in task.train_keys.items():
            if key in train.model_fields_set and key not in parsed.task.train_keys:
                errors.append(
                    parsed.source.error(
                        ("train", key), f"{key} {why}", f"use it with task: {task.name}"
                    )
                )
    return errors


def _metric_rules(parsed: Parsed, output: Output, metrics: list[str]) -> list:
    src, task = parsed.source, parsed.task
    allowed = task.metrics(parsed)
    errors = []
    for i, m in enumerate(metrics):
        known = m in allowed or ("top" in allowed and TOP_K.match(m))
        if not known:
            elsewhere = any(m in t.metrics(parsed) or TOP_K.match(m) for t in TASKS.values())
            what = f"does not fit task '{task.name}'" if elsewhere else "is unknown"
            errors.append(
                src.error(
                    ("train", "metrics", i),
                    f"metric '{m}' {what}",
                    did_you_mean(m, allowed)
                    or f"task: {task.name} reports {', '.join(a if a != 'top' else 'topK' for a in allowed)}",
                )
            )
        elif TOP_K.match(m):
            k, n = int(m[3:]), output.num_classes
            if output.kind.startswith("binary") or (n is not None and k >= n):
                errors.append(
                    src.error(
                        ("train", "metrics", i),
                        f"{m} needs more than {k} classes, the model has {n}",
                    )
                )
    return errors


def _monitor_rules(parsed: Parsed, metrics: list[str]) -> list:
    src, spec = parsed.source, parsed.spec
    train = spec.train
    errors = []
    names = [f"{split}_{m}" for split in ("train", "val") for m in ("loss", *metrics)]
    if train.monitor not in names:
        errors.append(
            src.error(
                ("train", "monitor"),
                f"cannot monitor '{train.monitor}'",
                did_you_mean(train.monitor, names) or f"choose from: {', '.join(names)}",
            )
        )
    if train.target is None:
        return errors
    targets = names + [f"test_{m}" for m in ("loss", *metrics)]
    if train.target.metric not in targets:
        errors.append(
            src.error(
                ("train", "target", "metric"),
                f"no metric '{train.target.metric}' to check",
                did_you_mean(train.target.metric, targets) or f"choose from: {', '.join(targets)}",
            )
        )
    elif train.target.metric.startswith("test_") and (
        spec.data is None or spec.data.test_split == 0
    ):
        errors.append(
            src.error(
                ("train", "target", "metric"),
                f"'{train.target.metric}' needs a test split",
                "set data.test_split",
            )
        )
    return errors
