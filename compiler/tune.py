"""`specc tune SPEC`: a hyperparameter search on Optuna, each trial an ordinary run folder.

`--param KEY=DIST` names a spec value (as `--set` does) and where to look: loguniform(a, b),
uniform(a, b), int(a, b[, step]), logint(a, b), choice(v1, v2, ...). Optuna's TPE sampler picks
each trial's values; the trial is `specc train` with them as `--set` values into STUDY/trial-NNNN.
While train.py runs, its epochs in metrics.jsonl are reported to Optuna, and a trial the pruner
stops gets SIGTERM (train.py saves a checkpoint and exits 130).

The study lives in Optuna's storage: STUDY/study.db (SQLite) unless `--storage URL`. The same
command again continues it: finished trials are kept, and a trial whose process died (Ctrl-C,
kill -9: its pid is gone on this host, or its heartbeat went stale on another) is run again with
the same values. Several `specc tune` processes on one storage share the study, each running
trials until the study holds `--trials` finished ones (a process may add one trial past that when
they finish together). At the end: a table of trials, trials.csv, best.yaml (a spec that
reproduces the best run with `specc train`), history.png and importances.png.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from .diagnostics import SpecError, UserError

KINDS = ("loguniform", "uniform", "int", "logint", "choice")
DIST = re.compile(r"^\s*([a-z]+)\s*\((.*)\)\s*$", re.S)
NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")
HEARTBEAT, GRACE = 10, 60  # seconds: a trial whose heartbeat is older than GRACE is dead
WAIT_PARENT = 120  # seconds a process that joins a new study waits for its MLflow parent run
WARMUP_EPOCHS = 3  # the median pruner judges a trial from its third epoch (or a quarter) on
STUDY_FILES = (
    "study.json",
    "study.db",
    "trials.csv",
    "best.yaml",
    "history.png",
    "importances.png",
)


class TrialFailed(Exception):
    """A trial that could not give a value (its spec, its training, its export): the study goes on."""


# ----------------------------------------------------------------------------- the search space


@dataclass(frozen=True)
class Param:
    key: str
    kind: str
    args: tuple
    text: str

    def suggest(self, trial):
        lo, hi = (self.args + (None, None))[:2]
        if self.kind == "loguniform":
            return trial.suggest_float(self.key, lo, hi, log=True)
        if self.kind == "uniform":
            return trial.suggest_float(self.key, lo, hi)
        if self.kind == "int":
            step = self.args[2] if len(self.args) > 2 else 1
            return trial.suggest_int(self.key, lo, hi, step=step)
        if self.kind == "logint":
            return trial.suggest_int(self.key, lo, hi, log=True)
        return trial.suggest_categorical(self.key, list(self.args))

    def corners(self) -> tuple:
        """Values every trial's spec must accept at least: the ends, or every choice."""
        return self.args if self.kind == "choice" else self.args[:2]


def parse_params(texts: list[str], required: bool = True) -> list[Param]:
    params, seen = [], set()
    for text in texts:
        key, sep, dist = text.partition("=")
        key = key.strip()
        usage = f"--param {text}: expected KEY=DIST, e.g. train.optimizer.lr=loguniform(1e-4, 1e-1)"
        if not sep or not key or any(not p for p in key.split(".")):
            raise UserError(usage)
        m = DIST.match(dist)
        if not m:
            raise UserError(f"{usage}; DIST is one of {', '.join(f'{k}(...)' for k in KINDS)}")
        kind, inner = m.group(1), m.group(2)
        if kind not in KINDS:
            raise UserError(
                f"--param {text}: unknown distribution '{kind}': use {', '.join(KINDS)}"
            )
        try:
            values = yaml.safe_load(f"[{inner}]")
        except yaml.YAMLError:
            raise UserError(f"--param {text}: cannot read the values ({inner})") from None
        values = tuple(_number(v) for v in values)
        params.append(Param(key, kind, _check(text, kind, values), text))
        if key in seen:
            raise UserError(f"--param {text}: {key} is searched twice")
        seen.add(key)
    if not params and required:
        raise UserError(
            "give at least one --param KEY=DIST to search, e.g. "
            "--param train.optimizer.lr=loguniform(1e-4,1e-1), or write them in the spec's "
            "tune.params"
        )
    return params


def search_space(written, texts: list[str]) -> list[Param]:
    """The spec's tune.params, with --param adding keys or replacing one."""
    spec = parse_params([f"{k}={v}" for k, v in written.params.items()] if written else [], False)
    given = {p.key: p for p in parse_params(texts, required=not spec)}
    return [given.pop(p.key, p) for p in spec] + list(given.values())


def spec_fingerprint(compiled) -> str:
    """sha256 of the spec as validated, less its tune: section: a study goes on when only how it
    searches was edited (more trials), and is refused when what a trial trains changed."""
    import hashlib

    from .pipeline import spec_doc

    doc = spec_doc(compiled.parsed)
    doc.pop("tune", None)
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _number(v):
    """YAML reads 1e-4 as text; a number is meant."""
    if isinstance(v, str) and NUMBER.match(v):
        return float(v)
    return v


def _check(text: str, kind: str, values: tuple) -> tuple:
    def bad(why):
        return UserError(f"--param {text}: {why}")

    if kind == "choice":
        if not values:
            raise bad("choice(...) needs at least one value")
        for v in values:
            if v is not None and not isinstance(v, bool | int | float | str):
                raise bad(f"a choice is a number, a word or true/false, not {v!r}")
        return values
    real = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    if kind in ("loguniform", "uniform", "logint") and (len(values) != 2 or not real):
        raise bad(f"{kind}(low, high) takes two numbers")
    if kind == "int" and (len(values) not in (2, 3) or not real):
        raise bad("int(low, high) or int(low, high, step) takes whole numbers")
    if kind in ("int", "logint"):
        if any(float(v) != int(v) for v in values):
            raise bad(f"{kind}(...) takes whole numbers")
        values = tuple(int(v) for v in values)
    else:
        values = tuple(float(v) for v in values)
    lo, hi = values[:2]
    if not lo < hi:
        raise bad(f"low ({lo}) must be below high ({hi})")
    if kind in ("loguniform", "logint") and lo <= 0:
        raise bad(f"{kind} needs a low above 0, got {lo}")
    if kind == "int" and len(values) == 3 and values[2] <= 0:
        raise bad("the step must be at least 1")
    return values


def as_override(key: str, value) -> str:
    """KEY=VALUE as `--set` reads it back to the same value (YAML wants 1.0e-05, not 1e-05)."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float):
        text = repr(value)
        if "e" in text and "." not in text.split("e")[0]:
            mantissa, exponent = text.split("e")
            text = f"{mantissa}.0e{exponent if exponent[0] in '+-' else '+' + exponent}"
    elif isinstance(value, str):
        text = json.dumps(value)
    else:
        text = str(value)
    return f"{key}={text}"


def check_space(spec: Path, overrides: list[str], params: list[Param]) -> None:
    """Every value at the ends of the space (and every choice) must compile, before any trial."""
    from .pipeline import compile_file

    for p in params:
        for v in p.corners():
            try:
                compile_file(spec, [*overrides, as_override(p.key, v)])
            except SpecError as e:
                raise UserError(
                    f"--param {p.text}: the spec does not compile with {p.key}={v}:\n{e}"
                ) from None


# ----------------------------------------------------------------------------- the study


@dataclass
class Options:
    spec: Path
    params: list
    trials: int | None = None  # default: the spec's tune.trials, else 20
    out: Path | None = None
    overrides: tuple = ()
    metric: str | None = None
    direction: str | None = None
    storage: str | None = None
    study: str | None = None
    sampler: str = "tpe"
    pruner: str = "median"
    seed: int | None = None
    track: str | None = None  # mlflow | none | None (the spec's train.track)
    tracking_uri: str | None = None


def tune(o: Options, log=print) -> dict:
    """Run trials until the study holds o.trials finished ones; return the summary."""
    try:
        import optuna
    except ImportError:
        raise UserError("specc tune needs its extra: pip install 'specc[tune]'") from None

    from .pipeline import compile_file
    from .plan import mode_of
    from .run_folder import RunFolder

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    overrides = list(o.overrides)
    base = compile_file(o.spec, overrides)
    written = base.spec.tune
    space = search_space(written, list(o.params))
    check_space(o.spec, overrides, space)
    metric = o.metric or (written and written.metric) or base.spec.train.monitor
    _check_metric(metric, base)
    direction = (
        o.direction
        or (written and written.direction)
        or ("maximize" if mode_of(metric) == "max" else "minimize")
    )
    o = replace(o, trials=o.trials or (written.trials if written else 20))
    if direction not in ("minimize", "maximize"):
        raise UserError(f"--direction {direction}: use minimize or maximize")
    study_dir = Path(o.out or Path("runs") / f"{base.ir.slug}-study")
    for wait in range(40):  # empty, or a folder specc made (or another process is making)
        try:
            RunFolder(study_dir).claim_for_build()
            break
        except UserError:
            if wait == 39 or not _being_marked(study_dir):
                raise
            time.sleep(0.25)
    study_dir.mkdir(parents=True, exist_ok=True)
    RunFolder(study_dir).record(*(study_dir / f for f in STUDY_FILES))
    name = o.study or base.ir.slug
    url = o.storage or "sqlite:///" + str((study_dir / "study.db").resolve())
    config = {
        "spec_sha256": spec_fingerprint(base),
        "overrides": [s for s in overrides if not s.startswith("tune.")],
        "params": {p.key: p.text.partition("=")[2].strip() for p in space},
        "metric": metric,
        "direction": direction,
    }
    warmup = max(WARMUP_EPOCHS, base.spec.train.epochs // 4)
    study, created = open_study(name, url, direction, o, config, warmup)
    tracking = _tracking(o, base, study, created, config, name)
    summary_doc = {
        "spec": base.spec.name,
        "spec_path": str(o.spec),
        "study": name,
        "storage": _safe_url(url),
        **config,
        "trials": o.trials,
    }
    _write_study_json(study_dir, summary_doc, study)
    objective = Objective(o, space, overrides, metric, study_dir, tracking, log)
    interrupted = False
    log(
        f"study {name} in {_safe_url(url)}: {metric} ({direction}) over "
        f"{', '.join(p.text for p in space)}; trials in {study_dir}/"
    )
    try:
        while True:
            for dead in fail_dead_trials(study):
                if tracking and dead.user_attrs.get("folder"):
                    tracking.killed(study_dir / dead.user_attrs["folder"])
            done, running = progress(study)
            if len(done) + len(running) >= o.trials:
                break
            study.optimize(objective, n_trials=1, catch=(TrialFailed,))
            if tracking:
                tracking.after_trial(study)
    except KeyboardInterrupt:
        interrupted = True
        if objective.current is not None:  # run it again when the study goes on
            retry(study, objective.current)
    done, running = progress(study)
    summary = summarize(study, study_dir, summary_doc, metric, o, base)
    for line in summary["lines"]:
        log(line)
    if tracking:
        tracking.end(study_dir, finished=len(done) >= o.trials, interrupted=interrupted)
    if interrupted:
        log(
            f"interrupted with {len(done)} of {o.trials} trials finished; the same command "
            "continues the study"
        )
        raise SystemExit(130)
    if running:
        log(f"{len(running)} trial(s) still running in other processes")
    return summary


def _being_marked(folder: Path) -> bool:
    """Another `specc tune` is writing the folder's first manifest (only a temporary file yet)."""
    names = [p.name for p in folder.iterdir()] if folder.is_dir() else []
    return bool(names) and all(n.startswith(".") and n.endswith(".tmp") for n in names)


def _check_metric(metric: str, base) -> None:
    split, _, name = metric.partition("_")
    if split not in ("train", "val", "test") or name not in base.plan.reported:
        shown = ", ".join(f"val_{n}" for n in base.plan.reported)
        raise UserError(
            f"--metric {metric}: this spec's runs report train_, val_ and test_ + "
            f"{', '.join(base.plan.reported)} (e.g. {shown})"
        )


def open_study(name: str, url: str, direction: str, o: Options, config: dict, warmup: int):
    """(study, whether this process made it). A study made with other settings is refused."""
    import optuna

    kwargs = {}
    if url.startswith("sqlite"):  # several processes on one file: wait for the lock
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 60}}
    storage = None
    for attempt in range(3):  # two processes creating one SQLite file may collide once
        try:
            storage = optuna.storages.RDBStorage(
                url,
                heartbeat_interval=HEARTBEAT,
                grace_period=GRACE,
                heartbeat_stale_trial_callback=retry,
                **kwargs,
            )
            break
        except ImportError as e:
            raise UserError(f"--storage {_safe_url(url)}: a database driver is missing: {e}")
        except Exception as e:
            if attempt == 2:
                raise UserError(f"cannot open the study storage {_safe_url(url)}: {e}") from None
            time.sleep(1.0 + attempt)
    sampler = (
        optuna.samplers.RandomSampler(seed=o.seed)
        if o.sampler == "random"
        else optuna.samplers.TPESampler(seed=o.seed)
    )
    pruner = {
        "median": lambda: optuna.pruners.MedianPruner(n_warmup_steps=warmup),  # steps: epochs
        "hyperband": lambda: optuna.pruners.HyperbandPruner(),
        "none": lambda: optuna.pruners.NopPruner(),
    }[o.pruner]()
    try:
        study = optuna.create_study(
            storage=storage, study_name=name, direction=direction, sampler=sampler, pruner=pruner
        )
        study.set_user_attr("specc", config)
        study.set_user_attr("specc_created", time.time())
        return study, True
    except optuna.exceptions.DuplicatedStudyError:
        pass
    study = optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner)
    for _ in range(20):  # its maker sets the settings right after making it
        if "specc" in study.user_attrs:
            break
        time.sleep(0.5)
    old = study.user_attrs.get("specc", {})
    differ = [k for k in config if old.get(k) != config[k]]
    if differ:
        raise UserError(
            f"study '{name}' in {_safe_url(url)} was started with other settings ("
            + "; ".join(f"{k}: {old.get(k)} there, {config[k]} here" for k in differ)
            + "): continue it with the same spec and options, or start another with "
            "-o DIR or --study NAME"
        )
    return study, False


def progress(study) -> tuple[list, list]:
    """(finished trials that count, running ones). A trial that died and is being run again
    does not count; a waiting one (queued again) is run before any new one."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get("retry_of") for t in trials}
    done = [
        t
        for t in trials
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
        or (t.state == TrialState.FAIL and t.number not in retried)
    ]
    return done, [t for t in trials if t.state == TrialState.RUNNING]


def fail_dead_trials(study) -> list:
    """A running trial whose process is gone from this host (kill -9) fails now and is queued
    again; on other hosts Optuna's heartbeat does the same after GRACE seconds."""
    from optuna.trial import TrialState

    from . import runs

    now, failed = time.time(), []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = t.user_attrs.get("owner")
        if owner and runs.alive(owner):
            continue
        if not owner and (t.datetime_start is None or now - t.datetime_start.timestamp() < GRACE):
            continue  # a trial's first moment, before it names its process
        try:
            study.tell(t.number, state=TrialState.FAIL)
        except Exception:  # another process got there first
            continue
        retry(study, t)
        failed.append(t)
    return failed


def retry(study, trial) -> None:
    """Queue a trial that died for another run with the same values."""
    study.enqueue_trial(dict(trial.params), user_attrs={"retry_of": trial.number})


class Objective:
    """One trial: its values as --set overrides, `specc train` into STUDY/trial-NNNN with its
    epochs reported to the pruner, the metric of the exported model as the value."""

    def __init__(self, o, space, overrides, metric, study_dir, tracking, log):
        self.o, self.space, self.overrides, self.metric = o, space, overrides, metric
        self.study_dir, self.tracking, self.log = study_dir, tracking, log
        self.current = None

    def __call__(self, trial):
        from . import driver
        from .pipeline import compile_file

        self.current = trial
        started = time.perf_counter()
        values = {p.key: p.suggest(trial) for p in self.space}
        folder = self.study_dir / f"trial-{trial.number:04d}"
        trial.set_user_attr("owner", {"pid": os.getpid(), "host": socket.gethostname()})
        trial.set_user_attr("folder", folder.name)
        shown = ", ".join(f"{k}={_fmt(v)}" for k, v in values.items())
        try:
            try:
                compiled = compile_file(
                    self.o.spec, [*self.overrides, *(as_override(k, v) for k, v in values.items())]
                )
            except SpecError as e:
                raise TrialFailed(f"the spec does not compile: {e}") from None
            track = self.tracking.for_trial(trial, folder) if self.tracking else "none"
            watch = Pruning(trial, folder, self.metric, track)
            value, report = self._train(driver, compiled, folder, track, watch)
        except TrialFailed as e:
            self.current = None
            trial.set_user_attr("error", str(e)[:2000])
            self.log(f"trial {trial.number}: {shown}: failed: {e}")
            raise
        except BaseException as e:
            if isinstance(e, _Pruned):
                self.current = None
                epoch, last = e.args
                seconds = time.perf_counter() - started
                trial.set_user_attr("seconds", round(seconds, 1))
                self.log(
                    f"trial {trial.number}: {shown}: pruned at epoch {epoch} "
                    f"({self.metric} {last:.4g}, {seconds:.0f}s)"
                )
                import optuna

                raise optuna.TrialPruned(f"at epoch {epoch}") from None
            raise
        self.current = None
        seconds = time.perf_counter() - started
        trial.set_user_attr("seconds", round(seconds, 1))
        trial.set_user_attr("epochs", report.get("epochs_run"))
        missed = report.get("_target_missed")
        if missed:
            trial.set_user_attr("target_missed", missed)
        best = _best_value(trial.study)
        better = best is None or (
            value < best if trial.study.direction.name == "MINIMIZE" else value > best
        )
        self.log(
            f"trial {trial.number}: {shown}: {self.metric} {value:.4g} in {seconds:.0f}s"
            + (" (best so far)" if better else "")
        )
        return value

    def _train(self, driver, compiled, folder, track, watch):
        from . import runs

        try:
            report = driver.train(
                compiled,
                folder,
                quiet=True,
                log=lambda *a, **k: None,
                track=track,
                watch=watch,
                output=folder / "train.log",
            )
        except SystemExit as e:
            if watch.pruned_at is not None:
                raise _Pruned(watch.pruned_at, watch.last) from None
            if e.code == 130:  # Ctrl-C: the study stops, and this trial runs again later
                watch.trial.set_user_attr("interrupted", True)
                raise KeyboardInterrupt from None
            from .train.errors import EXIT_DIVERGED

            why = {EXIT_DIVERGED: "the loss diverged (NaN or inf)"}.get(
                e.code, f"train.py exited {e.code}"
            )
            raise TrialFailed(f"{why}; see {folder / 'train.log'}") from None
        except UserError as e:
            # A missed train.target still leaves a model to judge; a failed export does not.
            report = runs._read_json(folder / "report.json")
            if not report or runs.status(folder) != "finished" or not _parity_ok(report):
                raise TrialFailed(str(e)) from None
            report["_target_missed"] = str(e)
        value = (report.get("metrics") or {}).get(self.metric)
        if not isinstance(value, int | float) or value != value:
            raise TrialFailed(f"the run reported no {self.metric} (see {folder / 'report.json'})")
        return float(value), report


class _Pruned(Exception):
    pass


class Pruning:
    """Called while train.py runs: each new epoch's metric goes to Optuna; a trial the pruner
    stops gets SIGTERM (a checkpoint, exit 130), and run.json notes the epoch."""

    def __init__(self, trial, folder: Path, metric: str, track):
        from . import runs

        self.trial, self.folder, self.metric, self.track = trial, Path(folder), metric, track
        self.tail = runs.EpochTail(self.folder / "metrics.jsonl")
        self.pruned_at, self.last = None, None

    def __call__(self, proc) -> None:
        from . import runs

        if self.pruned_at is not None:
            return
        for row in self.tail.new_rows():
            value, epoch = row.get(self.metric), row.get("epoch")
            if not isinstance(value, int | float) or not isinstance(epoch, int):
                continue
            self.trial.report(float(value), step=epoch)
            self.last = float(value)
            if self.trial.should_prune():
                self.pruned_at = epoch
                runs.note(self.folder, pruned_at=epoch)
                if hasattr(self.track, "tags"):
                    self.track.tags["specc.status"] = "pruned"
                proc.send_signal(signal.SIGTERM)
                return


# ----------------------------------------------------------------------------- the results


def summarize(study, study_dir: Path, doc: dict, metric: str, o: Options, base) -> dict:
    """The table of trials (printed, and trials.csv), best.yaml, the plots, study.json."""
    from optuna.trial import TrialState

    from .files import atomic_write

    trials = study.get_trials(deepcopy=False)
    keys = list(doc["params"])
    header = ["trial", "state", metric, *(_short_key(k) for k in keys), "epochs", "time", "folder"]
    rows = []
    for t in trials:
        state = t.state.name.lower()
        if t.state == TrialState.FAIL and "error" not in t.user_attrs:
            state = "interrupted" if t.user_attrs.get("interrupted") else "killed"
        rows.append(
            [
                str(t.number),
                state,
                "-" if t.value is None else f"{t.value:.4g}",
                *(_fmt(t.params[k]) if k in t.params else "-" for k in keys),
                str(t.user_attrs.get("epochs", "-")),
                f"{t.user_attrs['seconds']:.0f}s" if "seconds" in t.user_attrs else "-",
                t.user_attrs.get("folder", "-"),
            ]
        )
    from .runs import table

    lines = table([tuple(header), *map(tuple, rows)]) if rows else ["no trials yet"]
    csv = "\n".join(",".join(_csv(c) for c in row) for row in [header, *rows]) + "\n"
    atomic_write(study_dir / "trials.csv", csv)
    done, _ = progress(study)
    best = None
    try:
        best_trial = study.best_trial
    except ValueError:
        best_trial = None
    if best_trial is not None:
        best = {
            "trial": best_trial.number,
            "value": best_trial.value,
            "params": best_trial.params,
            "folder": best_trial.user_attrs.get("folder"),
        }
        path = write_best_spec(study_dir, o, best_trial, metric, doc["study"])
        lines.append(
            f"best: trial {best_trial.number}, {metric} {best_trial.value:.4g} with "
            + ", ".join(f"{k}={_fmt(v)}" for k, v in best_trial.params.items())
            + f"; reproduce it with: specc train {path}"
        )
    plots = draw_plots(study, study_dir, metric)
    if plots:
        lines.append("wrote " + ", ".join(str(p) for p in plots) + f", {study_dir / 'trials.csv'}")
    _write_study_json(study_dir, {**doc, "best": best}, study)
    return {"lines": lines, "best": best, "finished": len(done), "plots": plots}


def write_best_spec(study_dir: Path, o: Options, trial, metric: str, name: str) -> Path:
    """best.yaml: the spec as validated with the best trial's values: `specc train best.yaml`
    trains that very run (a data path is rewritten to hold from the study folder)."""
    from .files import atomic_write
    from .pipeline import compile_file, spec_doc

    compiled = compile_file(
        o.spec, [*o.overrides, *(as_override(k, v) for k, v in trial.params.items())]
    )
    doc = spec_doc(compiled.parsed)
    data = doc.get("data")
    if isinstance(data, dict) and isinstance(data.get("path"), str):
        source = (Path(o.spec).resolve().parent / data["path"]).resolve()
        data["path"] = os.path.relpath(source, study_dir.resolve())
    header = (
        f"# The best trial of study {name}: trial {trial.number}, {metric} {trial.value:.6g}\n"
        f"# ({study_dir / trial.user_attrs.get('folder', '?')}). It trains that very run:\n"
        f"#   specc train {study_dir / 'best.yaml'}\n"
    )
    path = study_dir / "best.yaml"
    text = yaml.safe_dump(doc, sort_keys=False, default_flow_style=None, width=100)
    atomic_write(path, header + text)
    return path


def draw_plots(study, study_dir: Path, metric: str) -> list[Path]:
    """history.png (every trial's value and the best so far), importances.png (fANOVA) and
    curves.png (each trial's metric by epoch, pruned ones too), drawn by Optuna's matplotlib
    visualizations; skipped while there are too few trials."""
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator
    from optuna.visualization import matplotlib as ov

    from .files import atomic_file

    written = []
    makers = [("history.png", ov.plot_optimization_history, metric)]
    if len(complete) >= 2:
        makers.append(("importances.png", ov.plot_param_importances, None))
    if any(t.intermediate_values for t in study.get_trials(deepcopy=False)):
        makers.append(("curves.png", ov.plot_intermediate_values, metric))
    for name, make, ylabel in makers:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                ax = make(study)
            except (ValueError, RuntimeError):
                continue  # e.g. importances of values that never changed
        if ylabel:
            ax.set_ylabel(ylabel)
        if name != "importances.png":  # trials and epochs are whole numbers
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if name == "curves.png":  # steps are epochs; many trials: a legend in two columns
            ax.set_xlabel("epoch")
            handles, labels = ax.get_legend_handles_labels()
            ax.legend(handles, labels, fontsize=7, ncol=1 + (len(labels) > 12),
                      bbox_to_anchor=(1.02, 1.0), loc="upper left")  # fmt: skip
        fig = ax.figure
        fig.set_size_inches(7.5, 4.5)
        fig.tight_layout()
        with atomic_file(study_dir / name) as f:
            fig.savefig(f, dpi=100, format="png")
        plt.close(fig)
        written.append(study_dir / name)
    return written


def _write_study_json(study_dir: Path, doc: dict, study) -> None:
    from .files import atomic_write

    done, running = progress(study)
    full = {**doc, "finished": len(done), "running": len(running)}
    atomic_write(study_dir / "study.json", json.dumps(full, indent=2, default=str) + "\n")


def _read(path: Path) -> dict:
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _best_value(study):
    try:
        return study.best_value
    except ValueError:
        return None


def _parity_ok(report: dict) -> bool:
    parity = report.get("parity") or {}
    return parity.get("ok", True) is not False


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _short_key(key: str) -> str:
    parts = key.split(".")
    return ".".join(parts[-2:]) if len(parts) > 2 else key


def _csv(cell: str) -> str:
    return f'"{cell}"' if "," in cell or '"' in cell else cell


def _safe_url(url: str) -> str:
    """A database URL without its password."""
    return re.sub(r"(//[^:/@]+):[^@]*@", r"\1:***@", url)


# ----------------------------------------------------------------------------- MLflow


def _tracking(o: Options, base, study, created: bool, config: dict, name: str):
    """The study's parent run in MLflow (found through the study, made once), or None."""
    wanted = o.track or ("mlflow" if o.tracking_uri else None)
    if wanted is None and getattr(base.spec.train, "track", None) == "mlflow":
        wanted = "mlflow"
    if wanted in (None, "none"):
        return None
    if wanted != "mlflow":
        raise UserError(f"unknown tracker '{wanted}': use mlflow or none")
    return StudyTracking(o, base, study, created, config, name)


class StudyTracking:
    """One MLflow parent run for the study (its search space as params, the best value after
    each trial, the study's files at the end); every trial a child run of it."""

    def __init__(self, o, base, study, created, config, name):
        from . import tracking

        self.tracking = tracking
        self.uri = tracking.store_uri(o.tracking_uri)
        self.client = tracking.client(o.tracking_uri)
        self.study_name = name
        parent = study.user_attrs.get("mlflow_parent") or {}
        made = study.user_attrs.get("specc_created") or 0.0
        while not created and parent.get("uri") != self.uri and time.time() < made + WAIT_PARENT:
            time.sleep(1.0)  # a study made just now: its maker is making the parent run
            parent = study.user_attrs.get("mlflow_parent") or {}
        if parent.get("uri") == self.uri and self._active(parent.get("run_id")):
            self.run_id = parent["run_id"]
            self.client.update_run(self.run_id, status="RUNNING")
        else:
            from mlflow.entities import Param

            exp = tracking.experiment_id(self.client, base.spec.name, self.uri)
            run = self.client.create_run(
                exp,
                run_name=f"{name} (study)",
                tags={"specc.study": name, "specc.spec": base.spec.name, "specc.kind": "study"},
            )
            self.run_id = run.info.run_id
            params = {f"tune.{k}": v for k, v in config["params"].items()}
            params |= {
                "tune.metric": config["metric"],
                "tune.direction": config["direction"],
                "tune.sampler": o.sampler,
                "tune.pruner": o.pruner,
            }
            self.client.log_batch(self.run_id, params=[Param(k, str(v)) for k, v in params.items()])
            study.set_user_attr("mlflow_parent", {"uri": self.uri, "run_id": self.run_id})

    def _active(self, run_id) -> bool:
        if not run_id:
            return False
        try:
            return self.client.get_run(run_id).info.lifecycle_stage == "active"
        except Exception:
            return False

    def for_trial(self, trial, folder: Path):
        return self.tracking.Tracking(
            uri=self.uri,
            parent_run_id=self.run_id,
            run_name=folder.name,
            tags={"optuna.trial": str(trial.number), "specc.study": self.study_name},
        )

    def killed(self, folder: Path) -> None:
        """The MLflow run of a trial whose process died ends KILLED (it stayed RUNNING)."""
        state = _read(folder / self.tracking.STATE)
        if state.get("uri") != self.uri or not state.get("run_id"):
            return
        try:
            self.client.set_tag(state["run_id"], "specc.status", "killed")
            self.client.set_terminated(state["run_id"], "KILLED", int(time.time() * 1000))
        except Exception as e:
            print(f"warning: MLflow: {e}")

    def after_trial(self, study) -> None:
        from mlflow.entities import Metric

        try:
            best, last = _best_value(study), study.get_trials(deepcopy=False)[-1]
            now, metrics = int(time.time() * 1000), []
            if last.value is not None:
                metrics.append(Metric("trial_value", float(last.value), now, last.number))
            if best is not None:
                metrics.append(Metric("best_value", float(best), now, last.number))
            self.client.log_batch(self.run_id, metrics=metrics)
        except Exception as e:  # tracking never stops the search
            print(f"warning: MLflow: {e}")

    def end(self, study_dir: Path, finished: bool, interrupted: bool) -> None:
        try:
            for name in STUDY_FILES:
                if name != "study.db" and (study_dir / name).is_file():
                    self.client.log_artifact(self.run_id, str(study_dir / name))
            if finished or interrupted:
                status = "FINISHED" if finished else "KILLED"
                self.client.set_terminated(self.run_id, status, int(time.time() * 1000))
        except Exception as e:
            print(f"warning: MLflow: {e}")
