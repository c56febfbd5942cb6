"""Training throughput: the generated train.py against a minimal hand-written loop (and Lightning).

All contenders train the same model (from the same generated model.py) on the same data, with
the same optimizer, batch size and data order, in one process with the same threads; epochs are
interleaved (generated, hand, lightning, generated, ...) so machine noise hits all alike.
Reported: median samples/s over the timed epochs after a warm-up epoch, and the median over
rounds of each round's ratio to the hand-written loop. Also: the time to write one checkpoint as a fraction of an epoch.

    python bench/train_throughput.py [--epochs 20] [--specs mlp_digits lenet5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.nn.functional as F

from specc.compiler import codegen, data
from specc.compiler import export as ex
from specc.compiler.pipeline import compile_file

REPO = Path(__file__).resolve().parents[1]


class Generated:
    """One epoch of the generated Trainer (its real train_epoch, quiet, no step logging)."""

    name = "generated train.py"

    def __init__(self, mod, folder: Path, tensors: dict):
        mod.CONFIG["log_every_steps"] = 0
        args = SimpleNamespace(out=folder, resume=False, quiet=True, epochs=None, device="cpu")
        torch.manual_seed(mod.CONFIG["seed"])
        self.trainer = mod.Trainer(args, tensors, torch.device("cpu"), 0, 1)
        self.progress = mod.Progress(quiet=True)
        self.n = len(tensors["train"][0])

    def epoch(self) -> float:
        start = time.perf_counter()
        self.trainer.train_epoch(self.progress, None, {"stop": None})
        seconds = time.perf_counter() - start
        self.trainer.epoch, self.trainer.batch, self.trainer.sums, self.trainer.seen = (
            self.trainer.epoch + 1,
            0,
            {},
            0,
        )
        return self.n / seconds

    def checkpoint_seconds(self) -> float:
        start = time.perf_counter()
        self.trainer.save()
        return time.perf_counter() - start


class HandLoop:
    """What a person writes in ten lines: shuffled index batches, forward, loss, backward, step."""

    name = "hand-written loop"

    def __init__(self, mod, tensors: dict):
        torch.manual_seed(mod.CONFIG["seed"])
        self.model = mod.Model()
        self.optimizer = mod.make_optimizer(self.model.parameters())
        self.x, self.y = tensors["train"]
        self.batch_size = mod.CONFIG["batch_size"]
        self.generator = torch.Generator().manual_seed(0)

    def epoch(self) -> float:
        start = time.perf_counter()
        self.model.train()
        for idx in torch.randperm(len(self.x), generator=self.generator).split(self.batch_size):
            loss = F.cross_entropy(self.model(self.x[idx]), self.y[idx])
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        return len(self.x) / (time.perf_counter() - start)


class LightningLoop:
    """PyTorch Lightning's Trainer on the same module, optimizer and batches (one epoch per fit)."""

    name = "Lightning Trainer"

    def __init__(self, mod, tensors: dict):
        import logging
        import warnings

        import lightning as L

        warnings.filterwarnings("ignore")  # its advice about workers and loggers, once per fit
        for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
            logging.getLogger(name).setLevel(logging.ERROR)

        torch.manual_seed(mod.CONFIG["seed"])
        model = mod.Model()

        class Module(L.LightningModule):
            def __init__(self):
                super().__init__()
                self.model = model

            def training_step(self, batch, _):
                x, y = batch
                return F.cross_entropy(self.model(x), y)

            def configure_optimizers(self):
                return mod.make_optimizer(self.model.parameters())

        self.module, self.L = Module(), L
        x, y = tensors["train"]
        dataset = torch.utils.data.TensorDataset(x, y)
        self.loader = torch.utils.data.DataLoader(
            dataset, batch_size=mod.CONFIG["batch_size"], shuffle=True
        )
        self.n, self.epochs_done = len(x), 0

    def epoch(self) -> float:
        self.epochs_done += 1
        trainer = self.L.Trainer(
            max_epochs=self.epochs_done,
            accelerator="cpu",
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
        )
        timer = {}

        class Clock(self.L.Callback):
            def on_train_epoch_start(self, *_):
                timer["start"] = time.perf_counter()

            def on_train_epoch_end(self, *_):
                timer["end"] = time.perf_counter()

        trainer.callbacks.append(Clock())
        trainer.fit(self.module, self.loader)
        return self.n / (timer["end"] - timer["start"])


def bench_spec(spec_name: str, epochs: int, with_lightning: bool) -> dict:
    spec_path = next(REPO.glob(f"specs/{spec_name}.*"))
    compiled = compile_file(spec_path)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        codegen.write(compiled, folder)
        ds = data.prepare(compiled)
        data.save(ds, folder / "data.npz")
        mod = ex.load_generated(folder, "train.py")
        x, y = mod.load_data(folder / "data.npz")
        splits = mod.split_indices(len(x), mod.CONFIG["seed"])
        tensors = {k: (torch.from_numpy(x[i]), torch.from_numpy(y[i])) for k, i in splits.items()}
        contenders = [Generated(mod, folder, tensors), HandLoop(mod, tensors)]
        if with_lightning:
            contenders.append(LightningLoop(mod, tensors))
        rates = {c.name: [] for c in contenders}
        for epoch in range(epochs + 1):
            for c in contenders if epoch % 2 else contenders[::-1]:  # alternate who goes first
                rate = c.epoch()
                if epoch:  # the first epoch warms up allocators and caches
                    rates[c.name].append(rate)
        ckpt = statistics.median(contenders[0].checkpoint_seconds() for _ in range(5))
    median = {k: statistics.median(v) for k, v in rates.items()}
    hand = rates["hand-written loop"]
    # Each round's ratio compares epochs run back to back; their median shrugs off slow drifts.
    ratio = {
        k: statistics.median(a / b for a, b in zip(v, hand, strict=True)) for k, v in rates.items()
    }
    best = {k: max(v) / max(hand) for k, v in rates.items()}  # fastest epoch against fastest epoch
    epoch_seconds = len(tensors["train"][0]) / median["generated train.py"]
    return {
        "spec": spec_name,
        "train_examples": len(tensors["train"][0]),
        "batch_size": mod.CONFIG["batch_size"],
        "samples_per_s": {k: round(v, 1) for k, v in median.items()},
        "ratio_to_hand": {k: round(v, 3) for k, v in ratio.items()},
        "best_epoch_ratio_to_hand": {k: round(v, 3) for k, v in best.items()},
        "checkpoint_seconds": round(ckpt, 4),
        "checkpoint_fraction_of_epoch": round(ckpt / epoch_seconds, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--specs", nargs="+", default=["mlp_digits", "lenet5"])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    try:
        import lightning  # noqa: F401

        with_lightning = True
    except ImportError:
        with_lightning = False
        print(
            "lightning is not installed here: skipping it (make bench installs it in .venv-bench)"
        )
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    results = [bench_spec(s, args.epochs, with_lightning) for s in args.specs]
    print(f"{'spec':<12} {'contender':<20} {'samples/s':>10} {'vs hand':>8} {'best vs best':>13}")
    for r in results:
        for name, rate in r["samples_per_s"].items():
            ratio, best = r["ratio_to_hand"][name], r["best_epoch_ratio_to_hand"][name]
            print(f"{r['spec']:<12} {name:<20} {rate:>10.0f} {ratio:>8.3f} {best:>13.3f}")
        print(
            f"{r['spec']:<12} checkpoint: {r['checkpoint_seconds'] * 1000:.1f} ms = {r['checkpoint_fraction_of_epoch']:.1%} of an epoch"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
