"""The names each generated train.py defines before its machinery, with what they mean.

This module is the contract between the spec-specific part of train.py (rendered from
templates/train.py.jinja and the task's partial) and the machinery in this package (inlined
after it). The machinery modules import these names from here so that they are real, linted,
testable Python; inlining drops those imports, and the generated file's own definitions take
their place. The values below are what the unit tests start from.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

SPEC_SHA256: str = "0" * 64  # the spec's identity; checkpoints carry it
CONFIG: dict[str, Any] = {  # the train: settings the machinery reads at run time
    "epochs": 1,
    "batch_size": 32,
    "seed": 0,
    "deterministic": False,
    "device": "cpu",
    "precision": "fp32",
    "accumulate_steps": 1,
    "workers": 0,
    "clip_grad_norm": None,
    "clip_grad_value": None,
    "early_stopping": None,
    "checkpoint": {"every_epochs": 1, "every_steps": 0, "restore_best": True},
    "log_every_steps": 0,
    "on_nan": {"action": "stop", "lr_factor": 0.5, "retries": 3},
    "tensorboard": False,
}
VAL_SPLIT, TEST_SPLIT = 0.2, 0.0  # fractions of the data held out
STANDARDIZE = False  # set the model's input mean and std from the training split
AUGMENT: dict | None = None  # data.augment: {crop, flip, rotate, color_jitter}, training batches only
MONITOR, MONITOR_MODE = "val_loss", "min"  # picks the best epoch; min or max
DATA_INPUTS: dict[str, dict] = {"x": {"dims": ["batch", 2], "dtype": "float32"}}  # read from data.npz
TARGET_DTYPE: type | None = np.int64  # what the targets become (None: int64 if integer, else float32)
RESTORE_BEST = True  # finish with the best epoch's weights (a GAN keeps its last)
ONE_PROCESS: str | None = None  # why this model trains in one process only, if it does
# train.init: {"from": absolute path, "map": "name" | "position", "strict", "skip", "where": "spec:line:col"}
INIT: dict[str, Any] | None = None
FREEZE: tuple[str, ...] = ()  # train.freeze: the module names whose parameters stay as they are
GROUPS: tuple[dict, ...] = ()  # train.optimizer.groups: {"layers": module names, "lr", "weight_decay"}


class Model(torch.nn.Module):  # model.py's model class
    pass


def make_optimizers(model: torch.nn.Module) -> dict[str, torch.optim.Optimizer]:
    """The optimizers by name; "optimizer" is the one schedules, clipping and rollback act on."""
    raise NotImplementedError


def make_schedule(optimizer: torch.optim.Optimizer, steps_per_epoch: int) -> tuple:
    """(scheduler stepped after every optimizer step or None, plateau scheduler or None)."""
    raise NotImplementedError


def train_batch(trainer, xb: tuple, yb: torch.Tensor) -> tuple:
    """Forward and backward on one batch: (loss, the outputs metric_sums reads, the targets)."""
    raise NotImplementedError


def evaluate_batch(model: torch.nn.Module, xb: tuple, yb: torch.Tensor, draws) -> dict:
    """Sums over one batch of the loss and metrics, in eval mode; `draws` is a generator seeded
    the same in every evaluation (for models that draw random inputs)."""
    raise NotImplementedError


def metric_sums(*outputs_and_targets) -> dict:
    """Sums over the batch of each metric; dividing by the example count gives the mean."""
    raise NotImplementedError


def derived_metrics(means: dict[str, float]) -> dict[str, float]:
    """The reported metrics from the per-example means of metric_sums (a task whose metrics are
    not means, F1 say, sums counts and derives them here)."""
    return means


AFTER_EPOCH: tuple = ()  # called as hook(trainer, row) after each epoch, on the main process
AFTER_TRAINING: tuple = ()  # called as hook(trainer) after the final scores, on the main process
