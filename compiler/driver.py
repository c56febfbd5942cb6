"""What `specc build` and `specc train` do, stage by stage, after the spec has compiled."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from specc.runtime.contracts import Meta

from .codegen import write
from .diagnostics import UserError
from .files import atomic_write
from .pipeline import Compiled, spec_doc
from .run_folder import (
    GRAPHS,
    TRAIN_FILES,
    RunFolder,
    changed_settings,
    resumable_names,
    run_identity,
)
from .weights import check_init, init_path


def default_out(compiled: Compiled, kind: str, fresh: bool = False) -> Path:
    """build/NAME; a fresh training run gets a folder of its own, made now (runs/NAME, else
    runs/NAME-2, NAME-3, ...), and --resume or --overwrite without -o take the newest of them."""
    base = Path(kind) / compiled.ir.slug
    if kind != "runs":
        return base
    from . import runs

    return runs.fresh_folder(base) if fresh else runs.newest_folder(base)


def build(compiled: Compiled, out_dir: Path, verify: bool = True, log=print) -> dict:
    """Write model.py, train.py, spec.json; then prove the fresh model exports and agrees with ORT."""
    check_init(compiled)
    folder = RunFolder(out_dir)
    folder.claim_for_build()
    files = write(compiled, out_dir)
    folder.record(*files.values())
    log(f"wrote {', '.join(str(p) for p in files.values())}")
    if not verify:
        return {"files": files}
    result = dry_run(compiled, out_dir)
    log(
        f"export dry-run: ONNX Runtime matches PyTorch (max abs diff {result['max_abs_diff']:.2e} <= {result['tolerance']:g})"
    )
    return {"files": files, "parity": result}


def dry_run(compiled: Compiled, out_dir: Path) -> dict:
    from specc.compiler import export as ex

    spec = compiled.spec
    model = ex.instantiate(out_dir)
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = Path(tmp) / "model.onnx"
        try:
            ex.export(model, compiled.ir, onnx_path, spec.export.opset)
            par = ex.parity(
                model, onnx_path, compiled.ir, spec.export.parity_batch_sizes, spec.export.tolerance
            )
        except ex.ExportError as e:
            where = ex.localize(model, compiled.ir, spec.export.opset)
            raise UserError(f"{compiled.path}: export dry-run failed: {where or e}") from e
        if not par.ok:
            where = ex.localize(model, compiled.ir, spec.export.opset)
            raise UserError(
                f"{compiled.path}: ONNX Runtime disagrees with PyTorch (max abs diff {par.max_abs_diff:.3g} > {par.tolerance:g})"
                + (f": {where}" if where else "")
            )
    return par.as_dict()


def train(
    compiled: Compiled,
    out_dir: Path,
    quiet: bool = False,
    resume: bool = False,
    overwrite: bool = False,
    nproc: int = 1,
    log=print,
    track=None,
    watch=None,
    output: Path | None = None,
) -> dict:
    """Build, prepare data, run the generated train.py, export, verify, and write report.json.
    `track`: "mlflow", "none" or a tracking.Tracking (default: the spec's train.track); `watch`:
    called with train.py's process about every second while it runs (`specc tune` prunes there);
    `output`: a file for train.py's output instead of the terminal."""
    from . import tracking

    tracker = tracking.tracker_for(compiled, out_dir, track, log)
    watches = [w for w in (watch, tracker.watch if tracker else None) if w]
    try:
        return _train(compiled, out_dir, quiet, resume, overwrite, nproc, log, watches, output)
    finally:
        if tracker:
            tracker.finish()


def _train(compiled, out_dir, quiet, resume, overwrite, nproc, log, watches, output) -> dict:
    from . import data as data_stage

    out_dir = Path(out_dir)
    started = time.perf_counter()
    folder = RunFolder(out_dir)
    folder.claim_for_training(resume, overwrite, log)
    if resume:  # refuse another spec's run before a single file of it is rewritten
        _check_resumable(compiled, folder)
    else:
        check_init(compiled)  # before the data stage: a mismatch needs no data to be found
    ds = data_stage.prepare(compiled)
    folder.record(
        *write(compiled, out_dir).values(),
        out_dir / "data.npz",
        *(out_dir / f for f in TRAIN_FILES),
    )
    data_stage.save(ds, out_dir / "data.npz")
    log(f"data: {ds.count} examples of shape {ds.shape} -> {out_dir / 'data.npz'}")
    if compiled.spec.data.augment is not None:  # what train.py will do to the training images
        picture = out_dir / "augmented_examples.png"
        folder.record(picture)
        data_stage.augmented_examples(
            out_dir / "data.npz", compiled.ir.augment, compiled.spec.train.seed, picture
        )
        log(f"data.augment: {picture}")
    _run_train_py(out_dir, quiet, resume, nproc, watches, output, init=init_path(compiled))
    results = json.loads((out_dir / "results.json").read_text(encoding="utf-8"))

    from . import export as ex
    from .tasks.base import ExportJob

    spec, task = compiled.spec, compiled.task
    model = ex.instantiate(out_dir, out_dir / results["weights"])
    vocab = ds.vocab.to_json() if ds.vocab is not None else None
    # How raw values become the model's input (specc.preprocess), for clients outside Python.
    extra = {Meta.PREPROCESS: json.dumps(_preprocess(compiled, ds, model))}
    onnx_path = ex.export(
        model, compiled.ir, out_dir / "model.onnx", spec.export.opset, ds.labels, vocab, extra
    )
    par = ex.parity(
        model,
        onnx_path,
        compiled.ir,
        spec.export.parity_batch_sizes,
        spec.export.tolerance,
        real=task.parity_inputs(ds, [i.name for i in compiled.ir.inputs]),
    )
    graphs = task.export(ExportJob(model, compiled, ds, out_dir, log))
    report = {
        "spec": spec.name,
        "spec_sha256": compiled.sha256,
        "overrides": list(compiled.overrides),
        "task": spec.task,
        "total_params": compiled.inferred.total_params,
        "epochs_run": results["epochs_run"],
        "best_epoch": results["best_epoch"],
        "stopped_early": results["stopped_early"],
        "weights": results["weights"],
        "metrics": results["metrics"],
        "train_samples_per_s": round(results["train_samples_per_s"], 1),
        "world_size": results["world_size"],
        "parity": par.as_dict(),
        "onnx": str(onnx_path),
        **graphs,
        **(
            {"unigram_entropy": compiled.text.unigram_entropy}
            if getattr(compiled.text, "unigram_entropy", None)
            else {}
        ),
        "wall_seconds": round(time.perf_counter() - started, 2),
    }
    atomic_write(out_dir / "report.json", json.dumps(report, indent=2) + "\n")
    # specc.json and tokenizer.json: the folder described for any client, from the graphs' metadata
    from specc.runtime import describe

    described = describe.write(out_dir)
    graphs_written = [out_dir / name for name in GRAPHS if (out_dir / name).is_file()]
    folder.record(out_dir / "report.json", *graphs_written, *described)
    log(
        f"exported {onnx_path}; ONNX Runtime vs PyTorch max abs diff {par.max_abs_diff:.2e} (tolerance {par.tolerance:g})"
    )
    if not par.ok:
        raise UserError(
            f"parity check failed: ONNX Runtime differs from PyTorch by {par.max_abs_diff:.3g} > {par.tolerance:g} (see {out_dir / 'report.json'})"
        )
    _check_target(spec.train.target, results["metrics"])
    return report


def _preprocess(compiled: Compiled, ds, model) -> dict:
    """{data input name: how a raw value becomes it}: the first data input, when the data says.
    Standardization is in the graph (clients feed raw values); its statistics are told too."""
    how = dict(ds.preprocess)
    if compiled.ir.standardize:
        how["standardize"] = {
            "where": "in_graph",
            "rule": "the graph computes (x - mean) / std itself: feed raw values",
            "mean": model.input_mean.flatten().tolist(),
            "std": model.input_std.flatten().tolist(),
        }
    names = [n for n in compiled.parsed.inputs if n not in compiled.task.noise_inputs]
    return {names[0]: how} if how else {}


def _check_resumable(compiled: Compiled, folder: RunFolder) -> None:
    """A run continues only with a spec of the same identity: what it computes is unchanged, only
    when it stops and how it reports may differ (run_folder.RESUMABLE)."""
    try:
        written_for = json.loads((folder.path / "spec.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        written_for = {}
    if written_for.get("identity", compiled.identity) == compiled.identity:
        return
    _, old = run_identity(written_for.get("spec", {}))
    _, new = run_identity(spec_doc(compiled.parsed))
    changed = changed_settings(old, new)
    raise UserError(
        f"{folder.path} was trained with another spec: {', '.join(changed[:6]) or 'its settings'} "
        f"differ. A resume may change only {resumable_names()} (epochs not under a cosine or "
        "one_cycle schedule); train into a fresh folder, or resume with the spec and --set values "
        "that wrote it"
    )


# Linux: train.py gets SIGTERM (a checkpoint, exit 130) when specc dies first, even by kill -9,
# instead of training on with nobody to export its model (PR_SET_PDEATHSIG survives the exec).
STOP_WITH_SPECC = (
    "import ctypes, os, signal, sys\n"
    "ctypes.CDLL(None).prctl(1, signal.SIGTERM)\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "    sys.exit(130)\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)


def _run_train_py(out_dir: Path, quiet, resume, nproc, watches=(), output=None, init=None) -> None:
    """Run the generated train.py (under torchrun for several processes); its exit code is ours."""
    from . import runs

    script = [str(out_dir / "train.py"), "--data", str(out_dir / "data.npz"), "--out", str(out_dir)]
    if init is not None:  # train.init's file, found from the spec's folder
        script += ["--init", str(init)]
    if quiet:
        script.append("--quiet")
    if resume:
        script.append("--resume")
    if nproc > 1:
        launcher = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={nproc}",
        ]
        cmd = launcher + script
    else:
        cmd = [sys.executable, *script]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if nproc > 1:  # share the cores instead of torchrun's default of one thread each
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    if sys.platform.startswith("linux"):
        cmd = [sys.executable, "-c", STOP_WITH_SPECC, str(os.getpid()), *cmd]
    runs.mark_started(out_dir, resume)
    if output:
        RunFolder(out_dir).record(output)
    with open(output or os.devnull, "ab") as sink:
        proc = subprocess.Popen(
            cmd, env=env, **({"stdout": sink, "stderr": sink} if output else {})
        )
    while True:
        try:
            for watch in watches:
                watch(proc)
            code = proc.wait(timeout=1.0 if watches else None)
            break
        except subprocess.TimeoutExpired:
            continue
        except KeyboardInterrupt:
            continue  # train.py got the signal too: let it save its checkpoint and exit
        except BaseException:
            proc.terminate()
            runs.mark_ended(out_dir, proc.wait())
            raise
    runs.mark_ended(out_dir, code)
    if code != 0:
        from .train.errors import EXIT_DIVERGED, EXIT_ERROR, EXIT_INTERRUPTED

        known = (EXIT_ERROR, EXIT_DIVERGED, EXIT_INTERRUPTED)
        raise SystemExit(code if code in known else 1)  # train.py has said why


def _check_target(target, metrics: dict) -> None:
    if target is None:
        return
    value = metrics.get(target.metric)
    if value is None:
        raise UserError(f"train.target: the run reported no {target.metric}")
    if target.min is not None and value < target.min:
        raise UserError(f"{target.metric} {value:.4f} is below train.target.min {target.min}")
    if target.max is not None and value > target.max:
        raise UserError(f"{target.metric} {value:.4f} is above train.target.max {target.max}")
