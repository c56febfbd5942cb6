"""Tracking runs in MLflow: the resolved spec as params, every epoch of metrics.jsonl (step =
epoch) as it is written, the exported model's metrics (`final/...`), and the run's files as
artifacts (model.onnx and the other graphs, metrics.png, report.json, spec.json, metrics.jsonl).

Asked for by `train.track: mlflow` in a spec, or `--track mlflow` (or `--tracking-uri URI`) on
`specc train` and `specc tune`. The store is the URI given, else MLFLOW_TRACKING_URI, else a SQLite
store under the project: runs/mlflow/mlflow.db, with artifacts in runs/mlflow/artifacts/ (MLflow 3
keeps its old ./mlruns file store only behind MLFLOW_ALLOW_FILE_STORE). A run folder keeps
tracking.json (store, experiment, run id): a resumed run goes on logging into the same MLflow run.
Tracking never costs a training run: a store that cannot be reached is an error before training
starts; a failure while logging is a warning and the run goes on.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .diagnostics import UserError
from .files import atomic_write

DEFAULT_STORE = Path("runs") / "mlflow"
STATE = "tracking.json"
ARTIFACTS = (
    "model.onnx",
    "step.onnx",
    "encoder.onnx",
    "decoder.onnx",
    "generator.onnx",
    "metrics.png",
    "report.json",
    "results.json",
    "spec.json",
    "metrics.jsonl",
)
STATUS = {"finished": "FINISHED", "interrupted": "KILLED", "pruned": "KILLED"}  # else FAILED
NOT_A_METRIC = ("kind", "epoch", "step")
KEY = re.compile(r"[^A-Za-z0-9_\-. /]")
MAX_PARAM = 6000  # MLflow's limits: characters of a param value, entries in a batch
MAX_BATCH_PARAMS, MAX_BATCH_METRICS = 100, 1000


@dataclass
class Tracking:
    """Where a run is tracked: the store (None: the default), and for a `specc tune` trial its
    parent run, the run's name and tags (`tags` may change until the run ends)."""

    uri: str | None = None
    parent_run_id: str | None = None
    run_name: str | None = None
    tags: dict = field(default_factory=dict)


def tracker_for(compiled, out_dir: Path, track, log=print):
    """The Tracker for one training run, or None when nothing asks for one."""
    if track == "none":
        return None
    if track is None:
        if getattr(compiled.spec.train, "track", None) != "mlflow":
            return None
        track = Tracking()
    elif track == "mlflow":
        track = Tracking()
    elif not isinstance(track, Tracking):
        raise UserError(f"unknown tracker '{track}': use mlflow or none")
    return Tracker(compiled, Path(out_dir), track, log)


# ----------------------------------------------------------------------------- the store


def store_uri(uri: str | None) -> str:
    """The URI given, else MLFLOW_TRACKING_URI, else runs/mlflow/mlflow.db (absolute)."""
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return "sqlite:///" + str((DEFAULT_STORE / "mlflow.db").resolve())


def client(uri: str | None):
    """An MlflowClient on the store, checked reachable (a SQLite store is created)."""
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise UserError("tracking in MLflow needs its extra: pip install 'specc[track]'") from None
    for name in ("mlflow", "alembic"):  # their set-up chatter ("Creating initial tables")
        logging.getLogger(name).setLevel(logging.WARNING)
    uri = store_uri(uri)
    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(3):  # two processes creating one SQLite store's tables may collide
        try:
            with _creating(uri):
                c = MlflowClient(tracking_uri=uri)
                c.search_experiments(max_results=1)
            return c
        except Exception as e:  # MLflow raises many kinds: say which store and why
            if attempt == 2 or not uri.startswith("sqlite:"):
                raise UserError(
                    f"cannot use the MLflow tracking store {uri}: {_short(e)}"
                ) from None
            time.sleep(2.0 + 2 * attempt)


@contextlib.contextmanager
def _creating(uri: str):
    """One process at a time sets up a SQLite store: MLflow creates its tables by running its
    migrations (half a minute on a loaded machine), and a second process that opened the file
    meanwhile failed on a half-made schema (no such column: spans.dimension_attributes)."""
    try:
        import fcntl
    except ImportError:  # Windows: the retries must do
        fcntl = None
    if fcntl is None or not uri.startswith("sqlite:///"):
        yield
        return
    with open(uri[len("sqlite:///") :] + ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def experiment_id(c, name: str, uri: str) -> str:
    """The experiment named after the spec, made on first use. In a SQLite store its
    artifacts go beside the database (artifacts/NAME), not in MLflow's default ./mlruns."""
    found = c.get_experiment_by_name(name)
    if found is None:
        location = None
        if uri.startswith("sqlite:///"):
            db = Path(uri[len("sqlite:///") :])
            location = (db.parent / "artifacts" / KEY.sub("_", name)).resolve().as_uri()
        try:
            return c.create_experiment(name, artifact_location=location)
        except Exception:  # another process made it first
            found = c.get_experiment_by_name(name)
            if found is None:
                raise
    if found.lifecycle_stage == "deleted":
        raise UserError(
            f"the MLflow experiment '{name}' is deleted in {uri}: restore it "
            f"(mlflow experiments restore --experiment-id {found.experiment_id}) or remove it"
        )
    return found.experiment_id


# ----------------------------------------------------------------------------- one run


class Tracker:
    """Logs one run folder to one MLflow run: params when train.py starts, epochs as they are
    written, final metrics, artifacts and the end status when specc is done with it."""

    def __init__(self, compiled, out_dir: Path, how: Tracking, log=print):
        self.compiled, self.out_dir, self.how, self.log = compiled, out_dir, how, log
        self.uri = store_uri(how.uri)
        self.client = client(how.uri)
        self.run_id: str | None = None
        self.logged_epoch = 0
        self.broken = False
        self.tail = None

    # called by driver.train
    def watch(self, proc=None) -> None:
        if self.broken:
            return
        try:
            if self.run_id is None:
                self._start()
            self._log_epochs()
        except Exception as e:
            self._give_up(e)

    def finish(self) -> None:
        """After train.py and the export: metrics, artifacts, status. A run whose train.py never
        started (a refused folder, bad data) logs nothing."""
        if self.broken or self.run_id is None:
            return
        from mlflow.entities import Metric

        from . import runs

        try:
            self._log_epochs()
            report = _read_json(self.out_dir / "report.json")
            now = _ms()
            step = report.get("best_epoch") or 0
            metrics = [
                Metric(f"final/{k}", float(v), now, step)
                for k, v in (report.get("metrics") or {}).items()
                if _is_number(v)
            ]
            self.client.log_batch(self.run_id, metrics=metrics)
            for name in ARTIFACTS:
                if (self.out_dir / name).is_file():
                    self.client.log_artifact(self.run_id, str(self.out_dir / name))
            state = runs.status(self.out_dir)
            if state == "running":  # we are the process: train.py ended, the export did not
                state = "failed"
            tags = {"specc.status": state, **self.how.tags}
            run = runs.read_run(self.out_dir)
            if run.target_met is not None:
                tags["specc.target_met"] = str(run.target_met).lower()
            for k, v in tags.items():
                self.client.set_tag(self.run_id, k, str(v)[:8000])
            self.client.set_terminated(
                self.run_id, STATUS.get(tags["specc.status"], "FAILED"), _ms()
            )
        except Exception as e:
            self._give_up(e)

    # ------------------------------------------------------------------ inside

    def _start(self) -> None:
        from . import runs
        from .pipeline import spec_doc
        from .run_folder import RunFolder

        self.tail = runs.EpochTail(self.out_dir / "metrics.jsonl")
        old = _read_json(self.out_dir / STATE)
        if old.get("uri") == self.uri and old.get("run_id") and self._exists(old["run_id"]):
            self.run_id = old["run_id"]  # a resumed run: the same MLflow run goes on
            self.client.update_run(self.run_id, status="RUNNING")
            history = self.client.get_metric_history(self.run_id, "lr")
            self.logged_epoch = max((m.step for m in history), default=0)
        else:
            spec = self.compiled.spec
            tags = {
                "specc.folder": str(self.out_dir.resolve()),
                "specc.spec": spec.name,
                "specc.task": spec.task,
                "specc.overrides": " ".join(self.compiled.overrides)[:8000],
                "specc.identity": self.compiled.identity,
                "mlflow.source.name": str(self.compiled.path),
                **(
                    {"mlflow.parentRunId": self.how.parent_run_id} if self.how.parent_run_id else {}
                ),
                **self.how.tags,
            }
            exp = experiment_id(self.client, spec.name, self.uri)
            run = self.client.create_run(
                exp, tags=tags, run_name=self.how.run_name or self.out_dir.name
            )
            self.run_id = run.info.run_id
            doc = {"uri": self.uri, "experiment_id": exp, "run_id": self.run_id}
            atomic_write(self.out_dir / STATE, json.dumps(doc, indent=2) + "\n")
            RunFolder(self.out_dir).record(Path(self.out_dir) / STATE)
        self._log_params(flatten(spec_doc(self.compiled.parsed)))

    def _log_params(self, params: dict) -> None:
        """Params are written once in MLflow: a resume that changed one (more epochs) notes the
        new value as a tag `specc.resumed.KEY`."""
        from mlflow.entities import Param

        logged = self.client.get_run(self.run_id).data.params
        new = [Param(k, v) for k, v in params.items() if k not in logged]
        for k in (k for k, v in params.items() if k in logged and logged[k] != v):
            self.client.set_tag(self.run_id, f"specc.resumed.{k}", params[k])
        for i in range(0, len(new), MAX_BATCH_PARAMS):
            self.client.log_batch(self.run_id, params=new[i : i + MAX_BATCH_PARAMS])

    def _log_epochs(self) -> None:
        from mlflow.entities import Metric

        metrics = []
        for row in self.tail.new_rows():
            epoch = row.get("epoch")
            if not isinstance(epoch, int) or epoch <= self.logged_epoch:
                continue
            now = _ms()
            metrics += [
                Metric(k, float(v), now, epoch)
                for k, v in row.items()
                if k not in NOT_A_METRIC and _is_number(v, finite=False)
            ]
            self.logged_epoch = epoch
        for i in range(0, len(metrics), MAX_BATCH_METRICS):
            self.client.log_batch(self.run_id, metrics=metrics[i : i + MAX_BATCH_METRICS])

    def _exists(self, run_id: str) -> bool:
        try:
            return self.client.get_run(run_id).info.lifecycle_stage == "active"
        except Exception:
            return False

    def _give_up(self, e: Exception) -> None:
        self.broken = True
        print(
            f"warning: MLflow tracking stopped ({self.uri}): {_short(e)}; the run goes on",
            file=sys.stderr,
        )


# ----------------------------------------------------------------------------- helpers


def flatten(doc, prefix: str = "") -> dict[str, str]:
    """{"train.optimizer.lr": "0.001", "model.0.type": "linear", ...}: MLflow params."""
    out = {}
    if isinstance(doc, dict):
        for k, v in doc.items():
            out |= flatten(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(doc, list) and any(isinstance(v, dict) for v in doc):
        for i, v in enumerate(doc):
            out |= flatten(v, f"{prefix}.{i}")
    else:
        text = doc if isinstance(doc, str) else json.dumps(doc)
        if len(text) > MAX_PARAM:
            text = text[: MAX_PARAM - 3] + "..."
        out[KEY.sub("_", prefix)[:250]] = text
    return out


def _is_number(v, finite: bool = True) -> bool:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return False
    return math.isfinite(v) or not finite


def _ms() -> int:
    return int(time.time() * 1000)


def _read_json(path: Path) -> dict:
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _short(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"[:300]
