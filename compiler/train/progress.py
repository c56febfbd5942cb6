"""What the user sees while training: a progress bar on a terminal, a line per epoch elsewhere,
and metrics.png."""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

from ._spec import CONFIG


class Progress:
    """A rich progress bar on a terminal; one plain line per epoch elsewhere (CI, log files)."""

    def __init__(self, quiet: bool):
        self.quiet, self.bar, self.task = quiet, None, None
        if quiet or not sys.stdout.isatty():
            return
        try:
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as Bar
        except ImportError:
            return
        self.bar = Bar(
            TextColumn("epoch {task.fields[epoch]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]} steps/s  loss {task.fields[loss]}"),
            TimeRemainingColumn(),
            transient=True,
        )
        self.bar.start()

    def start_epoch(self, epoch: int, total: int, done: int) -> None:
        if self.bar:
            label = f"{epoch}/{CONFIG['epochs']}"
            if self.task is None:
                self.task = self.bar.add_task("", total=total, completed=done, epoch=label, rate="-", loss="-")
            else:
                self.bar.reset(self.task, total=total, completed=done, epoch=label, rate="-", loss="-")

    def show(self, done: int, loss: float) -> None:
        if self.bar:
            self.bar.update(self.task, completed=done, loss=f"{loss:.4f}")
            speed = next(t.speed for t in self.bar.tasks if t.id == self.task)
            self.bar.update(self.task, rate=f"{speed:.1f}" if speed else "-")

    def line(self, text: str) -> None:
        if self.quiet:
            return
        if self.bar:
            self.bar.console.print(text, markup=False, highlight=False)
        else:
            print(text, flush=True)

    def close(self) -> None:
        if self.bar:
            self.bar.stop()


def panels(rows: list[dict]) -> tuple[list[str], dict[str, str]]:
    """The metrics metrics.png draws, in order, and each panel's title: a metric whose curves
    repeat an earlier one's, or negate them (up to float rounding), joins that panel's title."""
    candidates = [
        "loss",
        *[k[len("val_") :] for k in rows[0] if k.startswith("val_") and k != "val_loss"],
    ]

    def curves(name: str) -> list:
        return [r.get(f"{split}_{name}") for split in ("train", "val") for r in rows]

    def same(a: list, b: list) -> bool:  # equal up to float rounding (sums in another order)
        return all(
            x == y or (x is not None and y is not None and math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-9))
            for x, y in zip(a, b, strict=True)
        )

    def negated(name: str) -> list:
        return [None if x is None else -x for x in curves(name)]

    names, titles = [], {}
    for name in candidates:
        twin = next((n for n in names if same(curves(n), curves(name))), None)
        if twin is not None:
            titles[twin] += f" = {name}"
            continue
        twin = next((n for n in names if same(curves(n), negated(name))), None)
        if twin is not None:  # a VAE's elbo is its loss negated: one panel says both
            titles[twin] += f" = -{name}"
            continue
        titles[name] = name
        names.append(name)
    return names, titles


def plot_metrics(rows: list[dict], path: Path) -> None:
    """Loss and metric curves, train vs validation, per epoch, in a grid of at most three
    panels a row (skipped without matplotlib). A metric whose curves repeat an earlier panel's
    (a GAN's loss is its g_loss) is drawn once, titled with both names."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        return
    names, titles = panels(rows)
    columns = min(3, len(names))
    grid_rows = math.ceil(len(names) / columns)
    fig, axes = plt.subplots(grid_rows, columns, figsize=(5 * columns, 3.6 * grid_rows), squeeze=False)
    epochs = [r["epoch"] for r in rows]
    for k, ax in enumerate(axes.flat):
        if k >= len(names):
            ax.axis("off")
            continue
        name = names[k]
        for split in ("train", "val"):
            ax.plot(epochs, [r[f"{split}_{name}"] for r in rows], marker="o", markersize=3, label=split)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(titles[name])
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    tmp = path.with_name(".tmp." + path.name)
    fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    os.replace(tmp, path)
