"""Runs side by side: where a new run goes, what became of each run folder, and comparing them.

A new run without `-o` goes to runs/NAME, or runs/NAME-2, NAME-3, ... when that is taken: a
folder is made (mkdir is atomic) so two runs started together never share one. While train.py
runs, specc keeps run.json in the folder (its own pid and host, when it started, and train.py's
exit code once it has one); with results.json and report.json that says what became of a run:
running, finished, interrupted (Ctrl-C or SIGTERM), pruned (by `specc tune`), diverged, failed, or
killed (specc stopped without recording an end: kill -9, a crash, a power cut).
"""

from __future__ import annotations

import json
import math
import os
import re
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from .diagnostics import UserError
from .files import atomic_file, atomic_write
from .train.errors import EXIT_DIVERGED

RUN_STATE = "run.json"
STUDY = "study.json"  # marks a folder written by `specc tune` (tune.py)


# ----------------------------------------------------------------------------- where runs go


def fresh_folder(base: Path) -> Path:
    """The first of BASE, BASE-2, BASE-3, ... that does not exist, made now."""
    base = Path(base)
    base.parent.mkdir(parents=True, exist_ok=True)
    k = 1
    while True:
        path = base if k == 1 else base.with_name(f"{base.name}-{k}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            k += 1


def newest_folder(base: Path) -> Path:
    """The newest run of BASE's name (the highest of BASE, BASE-2, ... that is one): what
    `--resume` and `--overwrite` act on without `-o`. BASE itself when there is none."""
    base = Path(base)
    numbered = re.compile(re.escape(base.name) + r"-([0-9]+)$")
    found = [(1, base)] if base.is_dir() else []
    if base.parent.is_dir():
        for path in base.parent.iterdir():
            m = numbered.match(path.name)
            if m and path.is_dir() and _spec_name(path) in (None, _spec_name(base), base.name):
                found.append((int(m.group(1)), path))
    return max(found, key=lambda kp: kp[0])[1] if found else base


def _spec_name(path: Path) -> str | None:
    return (_read_json(path / "spec.json").get("spec") or {}).get("name")


# ----------------------------------------------------------------------------- run.json


def mark_started(out_dir: Path, resume: bool) -> None:
    """Before train.py starts: who runs it and since when (a resume keeps the first start)."""
    from .run_folder import RunFolder

    out_dir = Path(out_dir)
    old = _read_json(out_dir / RUN_STATE) if resume else {}
    now = time.time()
    doc = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": old.get("started", now),
        "last_started": now,
    }
    atomic_write(out_dir / RUN_STATE, json.dumps(doc, indent=2) + "\n")
    RunFolder(out_dir).record(out_dir / RUN_STATE)


def mark_ended(out_dir: Path, exit_code: int, **notes) -> None:
    """After train.py exits: its exit code (0 done, 4 diverged, 130 interrupted, else failed)."""
    path = Path(out_dir) / RUN_STATE
    doc = _read_json(path)
    if doc:
        doc.update(exit_code=exit_code, ended=time.time(), **notes)
        atomic_write(path, json.dumps(doc, indent=2) + "\n")


def note(out_dir: Path, **notes) -> None:
    """Add to run.json (`specc tune` notes the epoch a trial was pruned at)."""
    path = Path(out_dir) / RUN_STATE
    doc = _read_json(path)
    if doc:
        atomic_write(path, json.dumps({**doc, **notes}, indent=2) + "\n")


def alive(doc: dict) -> bool:
    """Whether the process run.json names still runs (on another host: assumed so)."""
    if doc.get("host") != socket.gethostname():
        return True
    pid = doc.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (killed, not yet reaped by its parent) runs no more
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def status(path: Path) -> str:
    """running, finished, interrupted, pruned, diverged, failed, killed, or built (never trained)."""
    path = Path(path)
    doc = _read_json(path / RUN_STATE)
    if doc and "exit_code" not in doc:
        return "running" if alive(doc) else "killed"
    code = doc.get("exit_code") if doc else None
    if doc.get("pruned_at") is not None:
        return "pruned"
    if code == 130:
        return "interrupted"
    if code == EXIT_DIVERGED:
        return "diverged"
    if code not in (None, 0):
        return "failed"
    if (path / "report.json").is_file():
        return "finished"
    if code == 0:  # train.py is done; specc exports, or died exporting
        return "running" if alive(doc) else "failed"
    if (path / "checkpoints" / "last.pt").is_file():
        return "interrupted"
    return "built"


# ----------------------------------------------------------------------------- reading a run


@dataclass
class Run:
    """What a run folder says about itself."""

    path: Path
    spec: str = "?"
    overrides: list = field(default_factory=list)
    settings: dict = field(default_factory=dict)  # spec.json's "spec"
    status: str = "built"
    monitor: str = "val_loss"
    mode: str = "min"
    best: float | None = None
    best_epoch: int | None = None
    epochs_run: int = 0
    epochs: int | None = None  # train.epochs
    target_met: bool | None = None
    started: float | None = None
    seconds: float | None = None
    metrics: dict = field(default_factory=dict)  # of the exported weights, or the last epoch's
    history: list = field(default_factory=list)  # metrics.jsonl's epoch rows

    @property
    def name(self) -> str:
        return self.path.name

    def as_json(self) -> dict:
        doc = {k: v for k, v in self.__dict__.items() if k not in ("history", "settings")}
        return {**doc, "path": str(self.path), "name": self.name}


def read_run(path: Path) -> Run:
    from .plan import mode_of

    path = Path(path)
    spec_json = _read_json(path / "spec.json")
    settings = spec_json.get("spec") or {}
    train = settings.get("train") or {}
    run = Run(
        path,
        spec=settings.get("name", "?"),
        overrides=list(spec_json.get("overrides") or []),
        settings=settings,
        status=status(path),
        monitor=train.get("monitor", "val_loss"),
        epochs=train.get("epochs"),
        history=epoch_rows(path / "metrics.jsonl"),
    )
    run.mode = mode_of(run.monitor)
    results = _read_json(path / "results.json")
    report = _read_json(path / "report.json")
    if results.get("monitor") and run.status in ("finished", "failed", "running"):
        run.best, run.best_epoch = results["monitor"].get("best"), results.get("best_epoch")
    else:
        scored = [r for r in run.history if _number(r.get(run.monitor))]
        if scored:
            pick = min if run.mode == "min" else max
            row = pick(scored, key=lambda r: r[run.monitor])
            run.best, run.best_epoch = row[run.monitor], row["epoch"]
    run.epochs_run = len(run.history)
    run.metrics = dict(report.get("metrics") or results.get("metrics") or {})
    if not run.metrics and run.history:
        run.metrics = {k: v for k, v in run.history[-1].items() if k.startswith(("train_", "val_"))}
    target = train.get("target")
    if target and run.metrics.get(target.get("metric")) is not None and report:
        value = run.metrics[target["metric"]]
        low, high = target.get("min"), target.get("max")
        run.target_met = (low is None or value >= low) and (high is None or value <= high)
    state = _read_json(path / RUN_STATE)
    run.started = state.get("started") or _mtime(path / "spec.json")
    if report.get("wall_seconds") is not None and run.status == "finished":
        run.seconds = report["wall_seconds"]
    end = state.get("ended") or (time.time() if run.status == "running" else None)
    if run.seconds is None and state.get("last_started") and end:
        run.seconds = end - state["last_started"]
    if run.seconds is None and run.history:  # killed: at least the epochs it ran
        run.seconds = sum(r.get("seconds", 0.0) for r in run.history)
    return run


def epoch_rows(path: Path) -> list[dict]:
    """metrics.jsonl's epoch lines (a line torn by a kill is skipped)."""
    rows = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError:
        return rows
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and row.get("kind") == "epoch":
            rows.append(row)
    return rows


class EpochTail:
    """The epoch lines train.py appends to metrics.jsonl, read as they come (a line still being
    written waits for its newline; a file cut short by a resume is read again)."""

    def __init__(self, path: Path):
        self.path, self.offset, self.partial = Path(path), 0, b""

    def new_rows(self) -> list[dict]:
        try:
            size = self.path.stat().st_size
            if size < self.offset:
                self.offset, self.partial = 0, b""
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                chunk = f.read()
        except OSError:
            return []
        self.offset += len(chunk)
        *lines, self.partial = (self.partial + chunk).split(b"\n")
        rows = []
        for line in lines:
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict) and row.get("kind") == "epoch":
                rows.append(row)
        return rows


def is_run(path: Path) -> bool:
    return (path / "spec.json").is_file() and (path / "manifest.json").is_file()


def find_runs(folder: Path) -> tuple[list[Run], list[Path]]:
    """The run folders right under FOLDER (by start time), and the study folders there."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"no such folder: {folder}")
    children = sorted(p for p in folder.iterdir() if p.is_dir())
    runs = [read_run(p) for p in children if is_run(p)]
    runs.sort(key=lambda r: (r.started or 0.0, r.name))
    studies = [p for p in children if (p / STUDY).is_file()]
    return runs, studies


# ----------------------------------------------------------------------------- `specc runs`


def overrides_text(run: Run, width: int = 80) -> str:
    """`--set` values, numbers to 4 digits (a tuned lr of 0.004430375245218269 reads 0.00443)."""
    shown = []
    for text in run.overrides:
        key, _, value = text.partition("=")
        try:
            number = float(value)
            value = value if number.is_integer() and "." not in value else f"{number:.4g}"
        except ValueError:
            pass
        shown.append(f"{key}={value}")
    text = ", ".join(shown) or "-"
    return text if len(text) <= width else text[: width - 3] + "..."


def best_text(run: Run) -> str:
    if run.best is None:
        return "-"
    return f"{run.monitor} {run.best:.4g} @{run.best_epoch}"


def when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts)) if ts else "-"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"


def list_runs(folder: Path) -> str:
    """The `specc runs` table: one line a run, then one a study."""
    runs, studies = find_runs(folder)
    if not runs and not studies:
        return f"no runs in {folder}"
    rows = [("run", "spec", "overrides", "best", "epochs", "status", "started", "time")]
    for r in runs:
        status_text = r.status + (" (target missed)" if r.target_met is False else "")
        epochs = f"{r.epochs_run}/{r.epochs}" if r.epochs else str(r.epochs_run)
        rows.append(
            (
                r.name,
                r.spec,
                overrides_text(r),
                best_text(r),
                epochs,
                status_text,
                when(r.started),
                duration(r.seconds),
            )
        )
    lines = table(rows) if runs else []
    for path in studies:
        doc = _read_json(path / STUDY)
        best = doc.get("best") or {}
        shown = f", best {doc.get('metric')} {best['value']:.4g}" if "value" in best else ""
        lines.append(
            f"study {path.name}: {doc.get('spec', '?')}, {doc.get('finished', 0)} of "
            f"{doc.get('trials', '?')} trials{shown} (specc runs {path})"
        )
    return "\n".join(lines)


def table(rows: list[tuple]) -> list[str]:
    widths = [max(len(str(row[c])) for row in rows) for c in range(len(rows[0]))]
    out = []
    for k, row in enumerate(rows):
        out.append("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths)).rstrip())
        if k == 0:
            out.append("  ".join("-" * w for w in widths))
    return out


# ----------------------------------------------------------------------------- `specc compare`


def compare(paths: list[Path], plot: Path | None) -> str:
    """Metrics side by side (the best of each row marked *), the settings that differ, and
    (to `plot`) every run's curves on one figure."""
    from .plan import mode_of

    runs = []
    for p in paths:
        p = Path(p)
        if not is_run(p):
            raise UserError(f"{p} is not a run folder (no spec.json and manifest.json)")
        runs.append(read_run(p))
    names = _unique_names(runs)
    rows = [("", *names)]
    rows.append(("spec", *(r.spec for r in runs)))
    rows.append(("status", *(r.status for r in runs)))
    rows.append(("epochs", *(str(r.epochs_run) for r in runs)))
    rows.append(("best epoch", *(str(r.best_epoch or "-") for r in runs)))
    differ = sorted({k for r in runs[1:] for k in _differ(runs[0].settings, r.settings)})
    differ = [k for k in differ if k != "tune" and not k.startswith("tune.")]  # not the runs'
    for key in differ:
        rows.append((key, *(_setting(r.settings, key) for r in runs)))
    keys = []
    for r in runs:
        keys += [k for k in r.metrics if k not in keys and _number(r.metrics[k])]
    for key in keys:
        values = [r.metrics.get(key) for r in runs]
        known = [v for v in values if _number(v)]
        best = None
        if len(known) > 1 and len(set(known)) > 1:
            best = (min if mode_of(key) == "min" else max)(known)
        rows.append(
            (
                key,
                *(
                    "-" if not _number(v) else f"{v:.4f}" + ("*" if v == best else "")
                    for v in values
                ),
            )
        )
    out = table(rows)
    if plot is not None:
        draw(runs, names, Path(plot))
        out.append(f"wrote {plot}")
    return "\n".join(out)


def _differ(old, new, path: str = "") -> list[str]:
    """The dotted keys whose values differ, into lists of equal length too (model.2.p)."""
    if isinstance(old, dict) and isinstance(new, dict):
        keys = sorted(set(old) | set(new))
        return [d for k in keys for d in _differ(old.get(k), new.get(k), f"{path}.{k}".lstrip("."))]
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [d for i, (a, b) in enumerate(zip(old, new)) for d in _differ(a, b, f"{path}.{i}")]
    return [] if old == new else [path or "(the spec)"]


def _unique_names(runs: list[Run]) -> list[str]:
    names = [r.name for r in runs]
    if len(set(names)) == len(names):
        return names
    return [f"{r.path.parent.name}/{r.name}" for r in runs]


def _setting(settings: dict, key: str) -> str:
    node = settings
    for part in key.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return "-"
    if isinstance(node, float):
        return f"{node:.4g}"
    return json.dumps(node) if isinstance(node, dict | list) else str(node)


def draw(runs: list[Run], names: list[str], path: Path) -> None:
    """One panel a quantity (loss, then each metric); one colour a run; validation solid,
    training dashed; x: epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    quantities = []
    for r in runs:
        for row in r.history:
            for k in row:
                if k.startswith(("train_", "val_")):
                    q = k.split("_", 1)[1]
                    if q not in quantities:
                        quantities.append(q)
    quantities = ["loss"] * ("loss" in quantities) + [q for q in quantities if q != "loss"]
    if not quantities:
        raise UserError("none of these runs has an epoch in metrics.jsonl to draw")
    columns = min(3, len(quantities))
    grid = math.ceil(len(quantities) / columns)
    fig, axes = plt.subplots(grid, columns, figsize=(5.2 * columns, 3.8 * grid), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, ax in enumerate(axes.flat):
        if k >= len(quantities):
            ax.axis("off")
            continue
        q = quantities[k]
        for i, (r, name) in enumerate(zip(runs, names)):
            color = colors[i % len(colors)]
            for split, style in (("val", "-"), ("train", "--")):
                points = [
                    (row["epoch"], row[f"{split}_{q}"])
                    for row in r.history
                    if _number(row.get(f"{split}_{q}"))
                ]
                if points:
                    xs, ys = zip(*points)
                    ax.plot(
                        xs,
                        ys,
                        style,
                        color=color,
                        marker="o" if split == "val" else None,
                        markersize=3,
                        label=name if split == "val" else None,
                    )
        ax.set_title(q)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if k == 0:
            ax.legend(fontsize=8)
    fig.suptitle("validation solid, training dashed", fontsize=9)
    fig.tight_layout()
    with atomic_file(path) as f:
        fig.savefig(f, dpi=100, format="png")
    plt.close(fig)


# ----------------------------------------------------------------------------- helpers


def _read_json(path: Path) -> dict:
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def _number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
