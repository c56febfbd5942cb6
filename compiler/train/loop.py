"""The training loop: a Trainer that owns everything a checkpoint holds, and `run`, which drives
it epoch by epoch (one process, or several under torchrun) until the spec's epochs are done,
early stopping says so, or the user interrupts."""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import math
import os
import random
import signal
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from ._spec import (
    AFTER_EPOCH,
    AFTER_TRAINING,
    AUGMENT,
    CONFIG,
    MONITOR,
    MONITOR_MODE,
    ONE_PROCESS,
    RESTORE_BEST,
    SPEC_SHA256,
    STANDARDIZE,
    Model,
    derived_metrics,
    make_optimizers,
    make_schedule,
    metric_sums,
    train_batch,
)
from .checkpoints import load_checkpoint, params_sha256, rng_state, save_checkpoint, set_rng_state
from .data import (
    Batches,
    EpochOrder,
    InProcessBatches,
    augment,
    augment_generator,
    given_splits,
    load_data,
    split_indices,
    splits_of,
)
from .errors import (
    CHECKPOINT_FORMAT,
    EXIT_DIVERGED,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    Diverged,
    Interrupted,
    TrainingError,
)
from .evaluation import evaluate
from .init import freeze, start_from
from .progress import Progress, plot_metrics


class Trainer:
    """Owns everything a checkpoint holds, and the loop that changes it."""

    def __init__(self, args, data: dict, device: torch.device, rank: int, world: int):
        self.args, self.data, self.device, self.rank, self.world = args, data, device, rank, world
        self.main, self.on_gpu = rank == 0, device.type != "cpu"
        self.model = Model()
        if not getattr(args, "resume", False):  # a resume reads its weights from the checkpoint
            start_from(self.model, getattr(args, "init", None))
        freeze(self.model)
        self.model.to(device)
        if STANDARDIZE:
            x = data["train"][0][0]
            mean, std = x.mean_std() if hasattr(x, "mean_std") else (x.mean(dim=0), x.std(dim=0))  # Rows: in chunks
            self.model.input_mean.copy_(mean)
            self.model.input_std.copy_(torch.where(std < 1e-6, torch.ones_like(std), std))  # constant features: scale 1
        self.net = torch.nn.parallel.DistributedDataParallel(self.model) if world > 1 else self.model
        self.optimizers = make_optimizers(self.model)
        self.optimizer = self.optimizers["optimizer"]  # schedules, clipping and rollback act on it
        self.order = EpochOrder(len(data["train"][1]), CONFIG["batch_size"], CONFIG["seed"], rank, world)
        self.accumulate = CONFIG["accumulate_steps"]
        self.batches = self.order.batches_per_epoch()
        self.steps_per_epoch = math.ceil(self.batches / self.accumulate)
        self.schedule, self.plateau = make_schedule(self.optimizer, self.steps_per_epoch)
        amp = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(CONFIG["precision"])
        self.autocast = (lambda: torch.autocast(device.type, dtype=amp)) if amp else contextlib.nullcontext
        self.scaler = torch.amp.GradScaler(device.type, enabled=CONFIG["precision"] == "fp16")
        if CONFIG["workers"]:  # worker processes gather batches while this one computes
            # Worker seeds come from the loader's own generator, never from the global one dropout uses.
            self.loader = torch.utils.data.DataLoader(
                Batches(*data["train"]),
                sampler=self.order,
                batch_size=None,
                num_workers=CONFIG["workers"],
                persistent_workers=True,
                pin_memory=device.type == "cuda",
                generator=torch.Generator().manual_seed(CONFIG["seed"]),
            )
        else:  # in-process: index the tensors directly, which costs nothing per batch
            self.loader = InProcessBatches(self.order, *data["train"])
        # Where the run stands; all of it goes into checkpoints.
        self.epoch, self.batch, self.step = (
            1,
            0,
            0,
        )  # epoch in progress, batches done in it, optimizer steps so far
        self.sums: dict[str, torch.Tensor] = {}
        self.seen = 0
        self.history: list[dict] = []
        self.best, self.best_epoch, self.bad_epochs = None, None, 0
        self.lr_scale, self.nan_retries = 1.0, 0
        self.pending: list[tuple] = []  # (step, loss, outputs, target) not yet checked and counted
        torch.manual_seed(CONFIG["seed"] + 1 + rank)  # dropout etc.: its own stream per process

    # -- checkpoints

    def position(self) -> dict:
        return {"epoch": self.epoch, "batch": self.batch, "step": self.step, "seen": self.seen}

    def state_dict(self) -> dict:
        states = [rng_state()]
        if self.world > 1:
            states = [None] * self.world
            dist.all_gather_object(states, rng_state())
        return {
            "format": CHECKPOINT_FORMAT,
            "spec_sha256": SPEC_SHA256,
            "model": self.model.state_dict(),
            **{name: optimizer.state_dict() for name, optimizer in self.optimizers.items()},
            "schedule": self.schedule.state_dict() if self.schedule else None,
            "plateau": self.plateau.state_dict() if self.plateau else None,
            "scaler": self.scaler.state_dict(),
            "rng": states,
            "position": self.position(),
            "sums": dict(self.sums),
            "history": self.history,
            "best": {"value": self.best, "epoch": self.best_epoch, "bad_epochs": self.bad_epochs},
            "lr_scale": self.lr_scale,
            "nan_retries": self.nan_retries,
            "world_size": self.world,
        }

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        for name, optimizer in self.optimizers.items():
            optimizer.load_state_dict(state[name])
        if self.schedule and state["schedule"]:
            self.schedule.load_state_dict(state["schedule"])
        if self.plateau and state["plateau"]:
            self.plateau.load_state_dict(state["plateau"])
        self.scaler.load_state_dict(state["scaler"])
        pos = state["position"]
        self.epoch, self.batch, self.step, self.seen = (
            pos["epoch"],
            pos["batch"],
            pos["step"],
            pos["seen"],
        )
        self.sums = dict(state["sums"])
        self.history = list(state["history"])
        best = state["best"]
        self.best, self.best_epoch, self.bad_epochs = (
            best["value"],
            best["epoch"],
            best["bad_epochs"],
        )
        self.lr_scale, self.nan_retries = state["lr_scale"], state["nan_retries"]
        rngs = state["rng"]
        if len(rngs) == self.world:
            set_rng_state(rngs[self.rank])
        else:  # resumed on another number of processes: fresh, distinct streams
            torch.manual_seed(CONFIG["seed"] + 1 + self.rank + 1000 * self.step)

    def save(self, name: str = "last.pt", full: bool = True) -> None:
        """full: everything a resume needs; otherwise the weights and where they were taken (best.pt)."""
        if not all(bool(torch.isfinite(p).all()) for p in self.model.parameters()):
            raise Diverged(f"parameters became NaN or infinite at epoch {self.epoch}, step {self.step}")
        if full:
            state = self.state_dict()  # every process joins the RNG gather
        else:
            state = {
                "format": CHECKPOINT_FORMAT,
                "spec_sha256": SPEC_SHA256,
                "model": self.model.state_dict(),
                "position": self.position(),
            }
        if self.main:
            save_checkpoint(self.args.out / "checkpoints" / name, state)
        if self.world > 1:
            dist.barrier()

    def resume(self) -> None:
        self.load_state_dict(load_checkpoint(self.args.out / "checkpoints" / "last.pt"))
        if self.main:  # forget what a killed run logged after this checkpoint
            path = self.args.out / "metrics.jsonl"
            kept = []
            for line in path.read_text(encoding="utf-8").splitlines() if path.exists() else []:
                try:
                    row = json.loads(line)
                except ValueError:
                    continue  # a line torn by the kill
                if (row["kind"] == "epoch" and row["epoch"] < self.epoch) or (
                    row["kind"] == "step" and row["step"] <= self.step
                ):
                    kept.append(line + "\n")
            path.write_text("".join(kept), encoding="utf-8")

    def rollback(self, error: Diverged, progress: Progress) -> None:
        """Back to the last good checkpoint with a lower learning rate, or give up."""
        nan = CONFIG["on_nan"]
        if nan["action"] != "rollback" or self.nan_retries >= nan["retries"]:
            raise error
        retries, scale = self.nan_retries + 1, self.lr_scale * nan["lr_factor"]
        state = load_checkpoint(self.args.out / "checkpoints" / "last.pt")
        self.load_state_dict(state)
        scale_lr(self.optimizer, [s for s in (self.schedule, self.plateau) if s], scale / self.lr_scale)
        self.lr_scale, self.nan_retries, self.pending = scale, retries, []
        progress.line(
            f"{error}; rolled back to step {self.step} with learning rates x{scale:g} (retry {retries}/{nan['retries']})"
        )

    # -- one epoch

    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def backward(self, loss: torch.Tensor) -> None:
        """Backpropagate a batch's loss: scaled for fp16, divided when gradients accumulate."""
        scaled = loss / self.accumulate if self.accumulate > 1 else loss
        (self.scaler.scale(scaled) if self.scaler.is_enabled() else scaled).backward()

    def flush(self) -> None:
        """Check and count the losses and outputs of the steps since the last flush.

        Done every few steps, not every step, so the loop never waits on a device sync per step;
        always before a checkpoint, so a NaN never reaches one.
        """
        if not self.pending:
            return
        steps, losses, outs, ys = zip(*self.pending)
        self.pending = []
        losses = torch.stack(losses).double()
        if self.world > 1:
            dist.all_reduce(losses)
            losses /= self.world
        finite = torch.isfinite(losses)
        if not bool(finite.all()):
            first = int((~finite).nonzero()[0])
            raise Diverged(f"loss became {float(losses[first])} at epoch {self.epoch}, step {steps[first]}")
        sizes = torch.tensor([len(y) for y in ys], dtype=torch.float64)
        outs = [torch.cat(parts).float() for parts in zip(*outs)]  # the model's output(s), joined
        batch = {
            "loss": (losses.cpu() * sizes).sum(),
            **{k: v.cpu() for k, v in metric_sums(*outs, torch.cat(ys)).items()},
        }
        for k, v in batch.items():
            self.sums[k] = self.sums.get(k, torch.zeros((), dtype=torch.float64)) + v
        self.seen += int(sizes.sum())

    def log_step(self, metrics_file) -> None:
        if self.main and self.seen:
            row = {
                "kind": "step",
                "epoch": self.epoch,
                "step": self.step,
                "lr": self.lr(),
                "train_loss": float(self.sums["loss"]) / self.seen,
            }
            metrics_file.write(json.dumps(row) + "\n")
            metrics_file.flush()

    def train_epoch(self, progress: Progress, metrics_file, stop: dict) -> None:
        every_steps, log_every = CONFIG["checkpoint"]["every_steps"], CONFIG["log_every_steps"]
        clip_norm, clip_value = CONFIG["clip_grad_norm"], CONFIG["clip_grad_value"]
        self.order.set_epoch(self.epoch, skip=self.batch)
        self.net.train()
        progress.start_epoch(self.epoch, self.batches, self.batch)
        for xb, yb in self.loader:
            if AUGMENT:  # the training split only; the draws are fixed by (seed, epoch, batch, rank)
                draws = augment_generator(CONFIG["seed"], self.epoch, self.batch, self.rank)
                xb = (augment(xb[0], draws), *xb[1:])
            if self.on_gpu:
                xb, yb = (
                    tuple(x.to(self.device, non_blocking=True) for x in xb),
                    yb.to(self.device, non_blocking=True),
                )
            self.batch += 1
            boundary = self.batch % self.accumulate == 0 or self.batch == self.batches
            sync = self.net.no_sync() if self.world > 1 and not boundary else contextlib.nullcontext()
            with sync:
                loss, outs, target = train_batch(self, xb, yb)
            self.pending.append((self.step + 1, loss.detach(), tuple(o.detach() for o in outs), target))
            if not boundary:
                continue
            if clip_norm or clip_value:
                self.scaler.unscale_(self.optimizer)
                if clip_norm:
                    torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip_norm)
                if clip_value:
                    torch.nn.utils.clip_grad_value_(self.model.parameters(), clip_value)
            if self.scaler.is_enabled():  # fp16: skips the step when gradients overflowed
                self.scaler.step(self.optimizer)
                self.scaler.update()
            else:
                self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            self.step += 1
            if self.schedule and (self.plateau is None or self.step <= self.schedule.total_iters):
                self.schedule.step()
            if self.step % 25 == 0:
                self.flush()
                progress.show(self.batch, float(self.sums["loss"]) / max(self.seen, 1))
            if log_every and self.step % log_every == 0:
                self.flush()
                self.log_step(metrics_file)
            if (every_steps and self.step % every_steps == 0) or stop["stop"]:
                self.flush()
                self.save()
            if stop["stop"]:
                raise Interrupted(
                    f"stopped by {stop['stop']} at epoch {self.epoch}, step {self.step}; checkpoints/last.pt holds this point"
                )
        self.flush()

    def end_epoch(self, seconds: float) -> tuple[dict, bool]:
        """Validate and track the best epoch; returns the epoch's row and whether it is the best so far."""
        sums, seen = self.sums, self.seen
        if self.world > 1:
            packed = torch.stack([sums[k] for k in sorted(sums)] + [torch.tensor(float(seen), dtype=torch.float64)])
            dist.all_reduce(packed)
            sums, seen = dict(zip(sorted(sums), packed[:-1])), int(packed[-1])
        train_m = derived_metrics({k: float(v) / max(seen, 1) for k, v in sums.items()})
        val_m = evaluate(self.model, *self.data["val"], self.device, self.autocast)
        row = {"kind": "epoch", "epoch": self.epoch, "step": self.step, "lr": self.lr()}
        row |= {f"train_{k}": v for k, v in train_m.items()} | {f"val_{k}": v for k, v in val_m.items()}
        row["seconds"], row["samples_per_s"] = seconds, seen / max(seconds, 1e-9)
        self.history.append(row)
        value = row[MONITOR]
        delta = (CONFIG["early_stopping"] or {}).get("min_delta", 0.0)
        if self.best is None:
            better = True
        elif MONITOR_MODE == "min":
            better = value < self.best - delta
        else:
            better = value > self.best + delta
        if better:
            self.best, self.best_epoch, self.bad_epochs = value, self.epoch, 0
        else:
            self.bad_epochs += 1
        if self.plateau and self.step >= (self.schedule.total_iters if self.schedule else 0):  # after warm-up
            self.plateau.step(value)
        self.epoch, self.batch, self.sums, self.seen = self.epoch + 1, 0, {}, 0
        return row, better


def scale_lr(optimizer: torch.optim.Optimizer, schedulers: list, factor: float) -> None:
    """Multiply every learning rate (current, and what the schedulers compute from) by factor."""
    for group in optimizer.param_groups:
        for key in ("lr", "initial_lr", "max_lr", "min_lr"):
            if key in group:
                group[key] *= factor
    for scheduler in schedulers:
        for s in [scheduler, *getattr(scheduler, "_schedulers", [])]:
            if hasattr(s, "base_lrs"):
                s.base_lrs = [lr * factor for lr in s.base_lrs]
            if hasattr(s, "_last_lr"):
                s._last_lr = [lr * factor for lr in s._last_lr]


def pick_device(requested: str, local_rank: int) -> torch.device:
    if requested == "cuda" and not torch.cuda.is_available():
        raise TrainingError("train.device is cuda, but torch sees no CUDA device (use auto or cpu)")
    if requested != "cpu" and torch.cuda.is_available():
        return torch.device("cuda", local_rank)
    if CONFIG["precision"] == "fp16":
        raise TrainingError("precision fp16 needs CUDA; use bf16 on CPU")
    return torch.device("cpu")


def stop_on_signals() -> dict:
    """Ctrl-C or SIGTERM: finish the current step, save a checkpoint, exit 130. A second one stops at once."""
    flag = {"stop": None}

    def handler(signum, frame):
        if flag["stop"]:
            raise KeyboardInterrupt
        flag["stop"] = signal.Signals(signum).name

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return flag


def run(args) -> int:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    if args.epochs:
        CONFIG["epochs"] = args.epochs
    device = pick_device(args.device or CONFIG["device"], local_rank)
    if world > 1 and ONE_PROCESS:
        raise TrainingError(ONE_PROCESS)
    if world > 1:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        if device.type == "cuda":
            torch.cuda.set_device(device)
        if CONFIG["batch_size"] % world:
            raise TrainingError(f"batch_size {CONFIG['batch_size']} does not split over {world} processes")
    if CONFIG["deterministic"]:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    seed = CONFIG["seed"]
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
    args.out.mkdir(parents=True, exist_ok=True)
    xs, y = load_data(args.data)  # the inputs memory-mapped: batches read their rows from disk
    splits = split_indices(len(y), seed, given_splits(args.data))
    if rank == 0:  # which examples trained, validated and tested the model
        tmp = args.out / ".splits.npz.tmp"
        with open(tmp, "wb") as f:
            np.savez(f, **splits)
        os.replace(tmp, args.out / "splits.npz")
    data = splits_of(xs, y, splits)

    trainer = Trainer(args, data, device, rank, world)
    progress = Progress(args.quiet or rank != 0)
    if args.resume:
        trainer.resume()
        progress.line(f"resumed from checkpoints/last.pt at epoch {trainer.epoch}, step {trainer.step}")
    else:
        trainer.save()  # step 0: what a rollback returns to before the first real checkpoint
    stop = stop_on_signals()
    metrics_file = (
        open(args.out / "metrics.jsonl", "a" if args.resume else "w", encoding="utf-8") if rank == 0 else None
    )
    writer = None
    if rank == 0 and CONFIG["tensorboard"]:
        try:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(args.out / "tensorboard"))
        except ImportError:
            progress.line("note: train.tensorboard is on but tensorboard is not installed (pip install tensorboard)")
    started, last_plot, stopped_early = time.perf_counter(), 0.0, False
    epochs, patience = CONFIG["epochs"], (CONFIG["early_stopping"] or {}).get("patience")
    try:
        while trainer.epoch <= epochs and not stopped_early:
            start = time.perf_counter()
            try:
                trainer.train_epoch(progress, metrics_file, stop)
            except Diverged as error:
                trainer.rollback(error, progress)
                continue
            row, better = trainer.end_epoch(time.perf_counter() - start)
            if rank == 0:
                metrics_file.write(json.dumps(row) + "\n")
                metrics_file.flush()
                if writer:
                    for k, v in row.items():
                        if k.startswith(("train_", "val_", "lr")):
                            writer.add_scalar(k.replace("_", "/", 1), v, row["epoch"])
                shown = "  ".join(f"{k} {v:.4f}" for k, v in row.items() if k.startswith(("train_", "val_")))
                progress.line(f"epoch {row['epoch']}/{epochs}  {shown}  lr {row['lr']:.3g}  ({row['seconds']:.1f}s)")
                if time.perf_counter() - last_plot > 5.0 or trainer.epoch > epochs:
                    plot_metrics(trainer.history, args.out / "metrics.png")
                    last_plot = time.perf_counter()
                for hook in AFTER_EPOCH:
                    hook(trainer, row)
            if better:
                trainer.save("best.pt", full=False)
            stopped_early = patience is not None and trainer.bad_epochs >= patience
            every = CONFIG["checkpoint"]["every_epochs"]
            if (every and row["epoch"] % every == 0) or trainer.epoch > epochs or stopped_early or stop["stop"]:
                trainer.save()
            if stop["stop"]:
                raise Interrupted(
                    f"stopped by {stop['stop']} after epoch {row['epoch']}; checkpoints/last.pt holds this point"
                )
    except Interrupted as e:
        progress.close()
        print(f"interrupted: {e}; continue with --resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:  # a second Ctrl-C: no time to save
        progress.close()
        print("interrupted; continue from the last checkpoint with --resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Diverged as error:
        progress.close()
        print(
            f"error: {error}; the last good checkpoint is checkpoints/last.pt. Lower train.optimizer.lr, set train.clip_grad_norm, or set train.on_nan: rollback",
            file=sys.stderr,
        )
        return EXIT_DIVERGED
    progress.close()
    if stopped_early:
        progress.line(
            f"early stop after epoch {trainer.epoch - 1}: {MONITOR} has not improved for {patience} epochs (best {trainer.best:.4f} at epoch {trainer.best_epoch})"
        )
    return finish(trainer, args, started, stopped_early, writer)


def finish(trainer: Trainer, args, started: float, stopped_early: bool, writer) -> int:
    """Restore the best weights (when asked), score them on every split, write results.json."""
    restore_best = RESTORE_BEST and CONFIG["checkpoint"]["restore_best"] and trainer.best_epoch is not None
    weights = "checkpoints/best.pt" if restore_best else "checkpoints/last.pt"
    if restore_best:
        trainer.model.load_state_dict(load_checkpoint(args.out / weights)["model"])
    if trainer.world > 1:
        digests = [None] * trainer.world
        dist.all_gather_object(digests, params_sha256(trainer.model))
        if trainer.main:
            (args.out / "ranks.json").write_text(
                json.dumps({"world_size": trainer.world, "params_sha256": digests}, indent=2) + "\n"
            )
        if len(set(digests)) != 1:
            raise TrainingError("the processes ended with different parameters (see ranks.json)")
    if trainer.main:
        scores = {
            name: evaluate(trainer.model, *split, trainer.device, trainer.autocast)
            for name, split in trainer.data.items()
            if len(split[1])
        }
        epochs_rows = trainer.history
        seconds = sum(r["seconds"] for r in epochs_rows)
        results = {
            "epochs_run": len(epochs_rows),
            "stopped_early": stopped_early,
            "best_epoch": trainer.best_epoch,
            "monitor": {"metric": MONITOR, "mode": MONITOR_MODE, "best": trainer.best},
            "weights": weights,
            "metrics": {f"{split}_{k}": v for split, m in scores.items() for k, v in m.items()},
            "last_epoch": epochs_rows[-1] if epochs_rows else None,
            "train_samples_per_s": sum(r["samples_per_s"] * r["seconds"] for r in epochs_rows) / max(seconds, 1e-9),
            "wall_seconds": time.perf_counter() - started,
            "world_size": trainer.world,
            "nan_rollbacks": trainer.nan_retries,
        }
        tmp = args.out / ".results.json.tmp"
        tmp.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, args.out / "results.json")
        if trainer.history:
            plot_metrics(trainer.history, args.out / "metrics.png")
        for hook in AFTER_TRAINING:
            hook(trainer)
    if writer:
        writer.close()
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).with_name("data.npz"))
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument("--epochs", type=int, default=None, help="override train.epochs")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None)
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints/last.pt")
    parser.add_argument("--init", type=Path, default=None, help="train.init's weights (default: the spec's path)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    try:
        code = run(args)
    except TrainingError as e:
        print(f"error: {e}", file=sys.stderr)
        code = EXIT_ERROR
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        where = f" to write {e.filename}" if e.filename else ""  # the checkpoints before it are intact
        print(f"error: no space left on the device{where}; free some and rerun with --resume", file=sys.stderr)
        code = EXIT_ERROR
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    sys.exit(code)
