"""The training plan: what `train:` means for this model, resolved and checked against its output.

`loss: auto` becomes a concrete loss, the metrics default by task, and the monitored metric gets
its direction. A loss, metric or monitor that cannot work with the model's output (top-5 of a
binary classifier, mse on class indices) is a located error here, before any tensor exists.
"""

from __future__ import annotations

from dataclasses import dataclass

from .diagnostics import SpecError, did_you_mean
from .shapes import Inferred
from .spec import Parsed

LOSSES = {
    "classification": ("cross_entropy", "binary_cross_entropy"),
    "regression": ("mse", "l1", "huber"),
    "language_model": ("cross_entropy",),
    "autoencoder": ("mse", "binary_cross_entropy", "l1"),
    "gan": ("adversarial",),
    "seq2seq": ("cross_entropy",),
}

HIGHER_IS_BETTER = ("accuracy", "elbo", "exact")  # and topK
GAN_METRICS = ("d_loss", "g_loss", "d_real", "d_fake")  # d_real/d_fake: mean D(x) on real / fake


@dataclass(frozen=True)
class TrainPlan:
    output_kind: str  # logits | probabilities | log_probabilities | binary_logit | binary_probability | values
    num_classes: int | None
    loss: str  # cross_entropy | binary_cross_entropy | mse | l1 | huber
    metrics: tuple[str, ...]
    monitor: str
    monitor_mode: str  # min | max

    @property
    def reported(self) -> tuple[str, ...]:
        """Names a split reports: loss and the metrics."""
        return ("loss", *self.metrics)


def output_kind(task: str, last_type: str, out_shape: tuple) -> str:
    if task in ("regression", "autoencoder", "gan"):
        return "values"
    binary = len(out_shape) == 1 and out_shape[0] == 1
    if binary:
        return "binary_probability" if last_type == "sigmoid" else "binary_logit"
    return {"softmax": "probabilities", "log_softmax": "log_probabilities"}.get(last_type, "logits")


def mode_of(metric: str) -> str:
    name = metric.split("_", 1)[-1]
    return "max" if name in HIGHER_IS_BETTER or name.startswith("top") else "min"


def plan(parsed: Parsed, inferred: Inferred) -> TrainPlan:
    spec, src = parsed.spec, parsed.source
    train = spec.train
    last = spec.model[inferred.order[-1]]
    out_shape = inferred.out_shapes[last.name]
    kind = output_kind(spec.task, last.type, out_shape)
    binary = kind.startswith("binary")
    num_classes = None
    if spec.task in ("classification", "language_model", "seq2seq"):
        num_classes = 2 if binary else (out_shape[-1] if isinstance(out_shape[-1], int) else None)
    errors = []
    if spec.task == "gan":
        errors += _gan_rules(parsed, inferred)
    if spec.task == "autoencoder":
        first = next(iter(spec.inputs.values()))
        if tuple(out_shape) != tuple(first.shape):
            errors.append(
                src.error(
                    parsed.origins[inferred.order[-1]].path,
                    f"the decoder gives {out_shape}, but it must rebuild the input's shape "
                    f"{tuple(first.shape)}",
                    "end the decoder with a layer of the input's shape (e.g. reshape)",
                )
            )
    if spec.task in ("language_model", "seq2seq"):
        out = out_shape
        if len(out) != 2:
            what = "a language model" if spec.task == "language_model" else "a seq2seq decoder"
            vocab = "vocab" if spec.task == "language_model" else "target_vocab"
            errors.append(
                src.error(
                    parsed.origins[inferred.order[-1]].path,
                    f"{what} outputs (batch, time, vocabulary), this one gives {out}",
                    f"end with {{type: linear, out_features: {vocab}}}",
                )
            )

    loss = train.loss.type
    if loss == "auto":
        loss = "mse" if spec.task in ("regression", "autoencoder") else "cross_entropy"
        loss = "adversarial" if spec.task == "gan" else loss
        if spec.task == "classification" and binary:
            loss = "binary_cross_entropy"
    if loss not in LOSSES[spec.task]:
        errors.append(
            src.error(
                ("train", "loss"),
                f"loss '{loss}' does not fit task '{spec.task}'",
                f"use one of: {', '.join(LOSSES[spec.task])}",
            )
        )
    elif loss == "binary_cross_entropy" and not binary and spec.task != "autoencoder":
        errors.append(
            src.error(
                ("train", "loss"),
                f"binary_cross_entropy needs one output unit, the model gives {out_shape}",
                "use cross_entropy for several classes",
            )
        )
    elif loss == "cross_entropy" and binary:
        errors.append(
            src.error(
                ("train", "loss"),
                "cross_entropy needs one output per class, the model gives one unit",
                "use binary_cross_entropy, or two output units",
            )
        )
    if train.loss.label_smoothing and kind not in ("logits", "probabilities", "log_probabilities"):
        errors.append(
            src.error(("train", "loss", "label_smoothing"), "label smoothing needs cross_entropy")
        )

    if train.tbptt and spec.task != "language_model":
        errors.append(
            src.error(
                ("train", "tbptt"),
                "tbptt carries a language model's state across chunks of a sequence",
                "use it with task: language_model",
            )
        )
    if train.teacher_forcing != 1.0 and spec.task != "seq2seq":
        errors.append(
            src.error(
                ("train", "teacher_forcing"),
                "teacher_forcing applies to a seq2seq decoder (task: seq2seq)",
                "a one-to-many `decoder` layer has its own teacher_forcing",
            )
        )
    metrics = train.metrics
    if metrics is None:
        metrics = {"regression": ["mse", "mae"], "autoencoder": ["mse"]}.get(
            spec.task, ["accuracy"]
        )
        if spec.task == "autoencoder" and spec.latent:
            metrics = ["mse", "recon", "kl", "elbo"]
        if spec.task == "gan":
            metrics = list(GAN_METRICS)
        if spec.task == "seq2seq":
            metrics = ["accuracy", "exact"]
    allowed = ("accuracy", "top") + (("exact",) if spec.task == "seq2seq" else ())
    if spec.task == "gan":
        allowed = GAN_METRICS
    if spec.task in ("regression", "autoencoder"):
        allowed = ("mse", "mae") + (("recon", "kl", "elbo") if spec.latent else ())
    for i, m in enumerate(metrics):
        if not m.startswith(allowed):
            errors.append(
                src.error(("train", "metrics", i), f"metric '{m}' does not fit task '{spec.task}'")
            )
        elif m.startswith("top"):
            k = int(m[3:])
            if binary or (num_classes is not None and k >= num_classes):
                errors.append(
                    src.error(
                        ("train", "metrics", i),
                        f"{m} needs more than {k} classes, the model has {num_classes}",
                    )
                )

    names = [f"{split}_{m}" for split in ("train", "val") for m in ("loss", *metrics)]
    if train.monitor not in names:
        errors.append(
            src.error(
                ("train", "monitor"),
                f"cannot monitor '{train.monitor}'",
                did_you_mean(train.monitor, names) or f"choose from: {', '.join(names)}",
            )
        )
    if train.target is not None:
        targets = names + [f"test_{m}" for m in ("loss", *metrics)]
        if train.target.metric not in targets:
            errors.append(
                src.error(
                    ("train", "target", "metric"),
                    f"no metric '{train.target.metric}' to check",
                    did_you_mean(train.target.metric, targets)
                    or f"choose from: {', '.join(targets)}",
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
    if errors:
        raise SpecError(errors)
    return TrainPlan(
        output_kind=kind,
        num_classes=num_classes,
        loss=loss,
        metrics=tuple(metrics),
        monitor=train.monitor,
        monitor_mode=mode_of(train.monitor),
    )


def _gan_rules(parsed: Parsed, inferred: Inferred) -> list:
    """The generator makes inputs; the discriminator turns one into a single logit."""
    spec, src, origins = parsed.spec, parsed.source, parsed.origins
    errors = []
    data_name = next(n for n in spec.inputs if n != "z")
    data_shape = tuple(spec.inputs[data_name].shape)
    last = {}
    for i in inferred.order:
        last[origins[i].path[0]] = i
    gen, disc = last.get("generator"), last.get("discriminator")
    if gen is not None and inferred.out_shapes[spec.model[gen].name] != data_shape:
        errors.append(
            src.error(
                origins[gen].path,
                f"the generator makes {inferred.out_shapes[spec.model[gen].name]}, but "
                f"input '{data_name}' is {data_shape}",
                "end the generator with a layer of the input's shape",
            )
        )
    if disc is not None and inferred.out_shapes[spec.model[disc].name] != (1,):
        errors.append(
            src.error(
                origins[disc].path,
                f"the discriminator must end in one logit (batch, 1), this one gives "
                f"{inferred.out_shapes[spec.model[disc].name]}",
                "end it with {type: linear, out_features: 1} (no sigmoid: the loss applies it)",
            )
        )
    if spec.train.schedule is not None:
        errors.append(
            src.error(
                ("train", "schedule"), "learning-rate schedules are not supported for GANs yet"
            )
        )
    return errors
