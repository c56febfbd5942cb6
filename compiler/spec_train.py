"""The `train:` and `export:` sections of a spec.

Every field has a default that trains the example specs well, so `train:` can be left out.
Values that depend on another choice (the learning rate of the chosen optimizer, the loss of
the task) are resolved when the spec compiles, and the resolved section is what `spec.json`
records and what the generated train.py runs.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    field_validator,
    model_validator,
)


class Strict(BaseModel):
    model_config = ConfigDict(
        extra="forbid", populate_by_name=True, frozen=True, allow_inf_nan=False
    )


# ----------------------------------------------------------------------------- optimizer

DEFAULT_LR = {"sgd": 0.01, "adam": 1e-3, "adamw": 1e-3, "rmsprop": 1e-3}


class ParamGroup(Strict):
    """Layers that train with their own learning rate or weight decay (a new head faster, say)."""

    layers: list[str] = Field(min_length=1, description="Layer or block names.")
    lr: PositiveFloat | None = Field(
        None, description="Their learning rate (default: the optimizer's)."
    )
    weight_decay: float | None = Field(
        None, ge=0.0, description="Their weight decay (default: the optimizer's)."
    )


class Optimizer(Strict):
    type: Literal["sgd", "adam", "adamw", "rmsprop"] = Field(
        "adam", description="sgd (momentum, nesterov), adam, adamw (decoupled decay) or rmsprop."
    )
    lr: PositiveFloat | None = Field(
        None, description="Learning rate (default: 0.01 for sgd, 0.001 otherwise)."
    )
    momentum: float = Field(0.0, ge=0.0, lt=1.0, description="Momentum (sgd, rmsprop).")
    nesterov: bool = Field(False, description="Nesterov momentum (sgd, needs momentum > 0).")
    weight_decay: float | None = Field(
        None,
        ge=0.0,
        description="L2 penalty; for adamw the decoupled decay (default 0.01 for adamw, else 0).",
    )
    betas: tuple[float, float] = Field((0.9, 0.999), description="Adam/AdamW moment decay rates.")
    eps: PositiveFloat = Field(1e-8, description="Denominator term (adam, adamw, rmsprop).")
    alpha: float = Field(0.99, gt=0.0, lt=1.0, description="RMSprop smoothing constant.")
    groups: list[ParamGroup] = Field(
        [], description="Parameter groups: layers with their own lr and weight_decay."
    )

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data):
        """The defaults that depend on the optimizer's type (its lr, adamw's decay)."""
        if not isinstance(data, dict):
            return data
        kind = data.get("type", "adam")
        if not isinstance(kind, str):
            return data  # the type error is pydantic's to report
        if data.get("lr") is None and kind in DEFAULT_LR:
            data = {**data, "lr": DEFAULT_LR[kind]}
        if data.get("weight_decay") is None:
            data = {**data, "weight_decay": 0.01 if kind == "adamw" else 0.0}
        return data

    @model_validator(mode="after")
    def _resolve(self):
        if self.nesterov and (self.type != "sgd" or self.momentum == 0):
            raise ValueError("nesterov needs type sgd and momentum > 0")
        if self.momentum and self.type not in ("sgd", "rmsprop"):
            raise ValueError(f"momentum applies to sgd and rmsprop, not {self.type}")
        if any(not 0.0 <= b < 1.0 for b in self.betas):
            raise ValueError("betas must lie in [0, 1)")
        return self


# ----------------------------------------------------------------------------- schedules


class _Schedule(Strict):
    warmup_epochs: NonNegativeFloat = Field(
        0.0, description="Linear warm-up in front of the schedule (epochs, fractions allowed)."
    )
    warmup_start_factor: float = Field(
        0.01, gt=0.0, le=1.0, description="Warm-up starts at lr times this."
    )


class StepSchedule(_Schedule):
    type: Literal["step"]
    step_epochs: PositiveInt = Field(description="Multiply the lr by gamma every this many epochs.")
    gamma: float = Field(0.1, gt=0.0, le=1.0)


class MultiStepSchedule(_Schedule):
    type: Literal["multistep"]
    milestones: list[PositiveInt] = Field(
        min_length=1, description="Epochs at which the lr is multiplied by gamma."
    )
    gamma: float = Field(0.1, gt=0.0, le=1.0)

    @field_validator("milestones")
    @classmethod
    def _increasing(cls, v):
        if v != sorted(set(v)):
            raise ValueError("milestones must be strictly increasing")
        return v


class ExponentialSchedule(_Schedule):
    type: Literal["exponential"]
    gamma: float = Field(0.95, gt=0.0, le=1.0, description="Per-epoch factor.")


class CosineSchedule(_Schedule):
    type: Literal["cosine"]
    min_lr: NonNegativeFloat = Field(0.0, description="The lr at the end of training.")


class OneCycleSchedule(Strict):
    type: Literal["one_cycle"]
    max_lr: PositiveFloat | None = Field(None, description="Peak lr (default: 10x optimizer.lr).")
    pct_start: float = Field(0.3, gt=0.0, lt=1.0, description="Fraction of steps spent rising.")


class PlateauSchedule(_Schedule):
    type: Literal["plateau"]
    factor: float = Field(0.1, gt=0.0, lt=1.0, description="Multiply the lr by this on a plateau.")
    patience: int = Field(3, ge=0, description="Epochs without improvement of `monitor`.")
    min_lr: NonNegativeFloat = Field(0.0)


Schedule = Annotated[
    Union[  # noqa: UP007
        StepSchedule,
        MultiStepSchedule,
        ExponentialSchedule,
        CosineSchedule,
        OneCycleSchedule,
        PlateauSchedule,
    ],
    Field(discriminator="type"),
]
SCHEDULE_TYPES = ("step", "multistep", "exponential", "cosine", "one_cycle", "plateau")


# ----------------------------------------------------------------------------- loss, metrics


class Loss(Strict):
    type: Literal["auto", "cross_entropy", "binary_cross_entropy", "mse", "l1", "huber"] = Field(
        "auto",
        description="auto: cross_entropy (or binary) for classification, mse for regression.",
    )
    label_smoothing: float = Field(
        0.0, ge=0.0, lt=1.0, description="cross_entropy: weight moved to a uniform target."
    )
    delta: PositiveFloat = Field(
        1.0, description="huber: where the loss turns from squared to linear."
    )

    @model_validator(mode="after")
    def _fits(self):
        if self.label_smoothing and self.type not in ("auto", "cross_entropy"):
            raise ValueError("label_smoothing applies to cross_entropy")
        return self


METRIC = re.compile(r"^[a-z][a-z0-9_]*$")  # which fit the model is its task's to say


class EarlyStopping(Strict):
    patience: PositiveInt = Field(5, description="Epochs without improvement before stopping.")
    min_delta: NonNegativeFloat = Field(0.0, description="Smallest change that counts.")


class Checkpoint(Strict):
    every_epochs: int = Field(
        1, ge=0, description="Write checkpoints/last.pt every N epochs (0: end only)."
    )
    every_steps: int = Field(0, ge=0, description="Also every N optimizer steps (0: off).")
    restore_best: bool = Field(
        True, description="Export the weights of the best epoch (by `monitor`), not the last."
    )


class OnNan(Strict):
    action: Literal["stop", "rollback"] = Field(
        "stop", description="stop: end the run; rollback: reload the last checkpoint, lower the lr."
    )
    lr_factor: float = Field(0.5, gt=0.0, lt=1.0, description="rollback: multiply the lr by this.")
    retries: PositiveInt = Field(3, description="rollback: give up after this many.")


class Target(Strict):
    metric: str = Field(description="e.g. val_accuracy, val_mae, test_accuracy.")
    min: float | None = Field(None, description="Fail the run if the metric ends below this.")
    max: float | None = Field(None, description="Fail the run if the metric ends above this.")

    @model_validator(mode="after")
    def _one_bound(self):
        if (self.min is None) == (self.max is None):
            raise ValueError("give exactly one of min, max")
        return self


class GanTrain(Strict):
    """How a GAN's two networks take turns."""

    d_steps: PositiveInt = Field(1, description="Discriminator updates per generator update.")
    loss: Literal["non_saturating", "minimax"] = Field(
        "non_saturating",
        description="non_saturating: the generator maximises log D(G(z)) (Goodfellow et al. 2014, "
        "section 3); minimax: it minimises log(1 - D(G(z))).",
    )
    label_smoothing: float = Field(
        0.0,
        ge=0.0,
        lt=0.5,
        description="One-sided: the discriminator's target for real inputs is 1 - this.",
    )
    d_lr: PositiveFloat | None = Field(
        None, description="The discriminator's learning rate (default: the optimizer's lr)."
    )


class Init(Strict):
    """The weights a model starts from instead of random ones."""

    from_: str = Field(
        alias="from",
        description="A PyTorch state_dict (.pt, .pth), a safetensors file, a specc checkpoint or "
        "a specc run folder (its exported weights), relative to the spec.",
    )
    map: Literal["name", "position"] = Field(
        "name",
        description="name: the file's tensor names are the model's (conv2d_1.weight, ...); "
        "position: the n-th tensor of the file goes to the model's n-th (state_dict order).",
    )
    strict: bool = Field(
        True,
        description="Every tensor on each side must find its partner (false: the model's missing "
        "ones keep their initial values, the file's extra ones are ignored). Shapes must always agree.",
    )
    skip: list[str] = Field(
        [],
        description="Layer names or tensor-name patterns (linear_2, *.bias) left out on both sides: "
        "they keep their initial values.",
    )


class TrainSpec(Strict):
    epochs: PositiveInt = Field(10, le=1_000_000, description="Passes over the training split.")
    batch_size: PositiveInt = Field(32, description="Examples per step (all processes together).")
    seed: int = Field(0, ge=0, description="Seeds weights, split, data order and dropout.")
    deterministic: bool = Field(
        False, description="Deterministic algorithms: a run repeats bitwise on the same machine."
    )
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto prefers CUDA.")
    precision: Literal["fp32", "bf16", "fp16"] = Field(
        "fp32", description="Autocast: bf16 on CPU or CUDA, fp16 on CUDA (with loss scaling)."
    )
    optimizer: Optimizer = Field(default_factory=Optimizer)
    schedule: Schedule | None = Field(
        None, description="Learning-rate schedule (stepped per step)."
    )
    loss: Loss = Field(default_factory=Loss)
    metrics: list[str] | None = Field(
        None,
        description="accuracy, topK (K = 2..20), mse, mae, exact (seq2seq: whole target "
        "sequences right) (default: accuracy, or mse and mae; seq2seq: accuracy and exact).",
    )
    monitor: str = Field(
        "val_loss", description="Metric that picks the best epoch, early stopping and plateaus."
    )
    early_stopping: EarlyStopping | None = None
    clip_grad_norm: PositiveFloat | None = Field(
        None, description="Clip the gradient's total norm."
    )
    clip_grad_value: PositiveFloat | None = Field(None, description="Clip each gradient element.")
    tbptt: PositiveInt | None = Field(
        None,
        description="Truncated backpropagation through time (language models): backpropagate "
        "through chunks of K steps, carrying the state across chunks detached.",
    )
    teacher_forcing: float = Field(
        1.0,
        ge=0.0,
        le=1.0,
        description="task: seq2seq: the chance per step that the decoder reads the true previous "
        "token in training (below 1: scheduled sampling, one step at a time).",
    )
    accumulate_steps: PositiveInt = Field(
        1, description="Add up gradients of this many batches per optimizer step."
    )
    checkpoint: Checkpoint = Field(default_factory=Checkpoint)
    log_every_steps: int = Field(
        50, ge=0, description="Write a step line to metrics.jsonl every N steps (0: epochs only)."
    )
    on_nan: OnNan = Field(default_factory=OnNan, description="What a NaN/Inf loss does.")
    gan: GanTrain = Field(
        default_factory=GanTrain, description="task: gan: the alternating updates."
    )
    workers: int = Field(0, ge=0, le=64, description="DataLoader worker processes.")
    tensorboard: bool = Field(
        False, description="Also log to DIR/tensorboard (when the package is installed)."
    )
    target: Target | None = Field(None, description="A result the run must reach, or fail.")
    init: Init | None = Field(None, description="Start from these weights (default: random).")
    freeze: list[str] = Field(
        [],
        description="Layer or block names whose parameters never change (no gradient, no optimizer).",
    )

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, v):
        for m in v or []:
            if not METRIC.match(m):
                raise ValueError(f"'{m}' is not a metric name (lowercase letters, digits, _)")
        if v is not None and len(set(v)) != len(v):
            raise ValueError("metrics are listed twice")
        return v


SHORTHANDS = {  # `key: "word"` is short for `key: {<field>: "word"}`
    ("train", "optimizer"): "type",
    ("train", "schedule"): "type",
    ("train", "loss"): "type",
    ("train", "on_nan"): "action",
    ("train", "init"): "from",
}


class ExportSpec(Strict):
    opset: int = Field(20, ge=18, le=23, description="ONNX opset version.")
    tolerance: PositiveFloat = Field(
        1e-4, description="Max abs difference allowed between ONNX Runtime and PyTorch."
    )
    parity_batch_sizes: list[PositiveInt] = Field(
        [1, 5, 64], min_length=1, description="Batch sizes of the parity check."
    )
