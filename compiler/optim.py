"""The spec's optimizer and learning-rate schedule, written as the code train.py runs.

What the spec fixed at generation time is stated as code (`torch.optim.SGD(params, lr=lr,
momentum=0.9)`), not as a dict train.py would read back: a reader sees exactly what runs, and
editing the file changes what runs.
"""

from __future__ import annotations

from .sanitize import lit
from .spec_train import Optimizer

OPTIMIZERS = {  # type -> (torch class, the settings it takes besides lr)
    "sgd": ("SGD", ("momentum", "nesterov", "weight_decay")),
    "adam": ("Adam", ("betas", "eps", "weight_decay")),
    "adamw": ("AdamW", ("betas", "eps", "weight_decay")),
    "rmsprop": ("RMSprop", ("alpha", "eps", "momentum", "weight_decay")),
}


def optimizer_call(opt: Optimizer) -> str:
    """`torch.optim.X(params, lr=lr, ...)` with the spec's settings as literals."""
    cls, keys = OPTIMIZERS[opt.type]
    settings = ", ".join(f"{k}={lit(getattr(opt, k))}" for k in keys)
    return f"torch.optim.{cls}(params, lr=lr, {settings})"


def schedule_lines(schedule, monitor_mode: str, lr: float) -> list[str]:
    """The body of make_schedule(optimizer, steps_per_epoch): the spec counts in epochs, the
    schedulers in optimizer steps. Returns (per-step scheduler, per-epoch plateau scheduler)."""
    if schedule is None:
        return ["return None, None"]
    lines = ["lrs = torch.optim.lr_scheduler"]
    if schedule.type in ("one_cycle", "cosine"):  # laid out over every step of the run
        lines.append('total = CONFIG["epochs"] * steps_per_epoch')
    if schedule.type == "one_cycle":
        max_lr = lit(schedule.max_lr or 10 * lr)  # default: ten times the optimizer's lr
        return lines + [
            f"return lrs.OneCycleLR(optimizer, max_lr={max_lr}, total_steps=total, "
            f"pct_start={lit(schedule.pct_start)}), None"
        ]
    lines.append(f"warmup = round({lit(schedule.warmup_epochs)} * steps_per_epoch)")
    ramp = (
        f"lrs.LinearLR(optimizer, start_factor={lit(schedule.warmup_start_factor)}, "
        "total_iters=warmup)"
    )
    if schedule.type == "plateau":
        return lines + [
            f"plateau = lrs.ReduceLROnPlateau(optimizer, mode={lit(monitor_mode)}, "
            f"factor={lit(schedule.factor)}, patience={lit(schedule.patience)}, "
            f"min_lr={lit(schedule.min_lr)})",
            f"return ({ramp} if warmup else None), plateau",
        ]
    main = _main_schedule(schedule)
    return lines + [
        f"main = {main}",
        "if not warmup:",
        "    return main, None",
        f"return lrs.SequentialLR(optimizer, [{ramp}, main], milestones=[warmup]), None",
    ]


def _main_schedule(s) -> str:
    """The scheduler after warm-up, for the step, multistep, exponential and cosine types."""
    if s.type == "step":
        return f"lrs.StepLR(optimizer, step_size={lit(s.step_epochs)} * steps_per_epoch, gamma={lit(s.gamma)})"
    if s.type == "multistep":  # milestones counted after warm-up
        return (
            "lrs.MultiStepLR(optimizer, milestones=[max(1, m * steps_per_epoch - warmup) for m in "
            f"{lit(s.milestones)}], gamma={lit(s.gamma)})"
        )
    if s.type == "exponential":  # gamma per epoch
        return f"lrs.ExponentialLR(optimizer, gamma={lit(s.gamma)} ** (1 / steps_per_epoch))"
    return (
        f"lrs.CosineAnnealingLR(optimizer, T_max=max(1, total - warmup), eta_min={lit(s.min_lr)})"
    )
