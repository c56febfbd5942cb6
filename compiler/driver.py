"""What `specc build` and `specc train` do, stage by stage, after the spec has compiled."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .codegen import atomic_write, write
from .diagnostics import UserError
from .pipeline import Compiled


def default_out(compiled: Compiled, kind: str) -> Path:
    return Path(kind) / compiled.ir.slug


def build(compiled: Compiled, out_dir: Path, verify: bool = True, log=print) -> dict:
    """Write model.py, train.py, spec.json; then prove the fresh model exports and agrees with ORT."""
    files = write(compiled, out_dir)
    log(f"wrote {', '.join(str(p) for p in files.values())}")
    if not verify:
        return {"files": files}
    result = dry_run(compiled, out_dir)
    log(
        f"export dry-run: ONNX Runtime matches PyTorch (max abs diff {result['max_abs_diff']:.2e} <= {result['tolerance']:g})"
    )
    return {"files": files, "parity": result}


def dry_run(compiled: Compiled, out_dir: Path) -> dict:
    from specc.runtime import export as ex

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
    compiled: Compiled, out_dir: Path, quiet: bool = False, epochs: int | None = None, log=print
) -> dict:
    """Build, prepare data, run the generated train.py, export, verify, and write report.json."""
    from . import data as data_stage

    out_dir = Path(out_dir)
    started = time.perf_counter()
    ds = data_stage.prepare(compiled)
    write(compiled, out_dir)
    data_stage.save(ds, out_dir / "data.npz")
    log(f"data: {len(ds.x)} examples of shape {tuple(ds.x.shape[1:])} -> {out_dir / 'data.npz'}")

    cmd = [
        sys.executable,
        str(out_dir / "train.py"),
        "--data",
        str(out_dir / "data.npz"),
        "--out",
        str(out_dir),
    ]
    if epochs is not None:
        cmd += ["--epochs", str(epochs)]
    if quiet:
        cmd.append("--quiet")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.run(cmd, env=env, check=False)
    if proc.returncode != 0:
        raise UserError(
            f"training failed (train.py exited with {proc.returncode}); the last checkpoint, if any, is in {out_dir / 'checkpoints'}"
        )
    metrics = _last_metrics(out_dir / "metrics.jsonl")

    from specc.runtime import export as ex

    spec = compiled.spec
    model = ex.instantiate(out_dir, out_dir / "checkpoints" / "last.pt")
    onnx_path = ex.export(
        model, compiled.ir, out_dir / "model.onnx", spec.export.opset, labels=ds.labels
    )
    par = ex.parity(
        model,
        onnx_path,
        compiled.ir,
        spec.export.parity_batch_sizes,
        spec.export.tolerance,
        real_x=ds.x,
    )
    report = {
        "spec": spec.name,
        "spec_sha256": compiled.sha256,
        "task": spec.task,
        "total_params": compiled.inferred.total_params,
        "epochs": metrics.get("epoch"),
        "final": metrics,
        "parity": par.as_dict(),
        "onnx": str(onnx_path),
        "wall_seconds": round(time.perf_counter() - started, 2),
    }
    atomic_write(out_dir / "report.json", json.dumps(report, indent=2) + "\n")
    log(
        f"exported {onnx_path}; ONNX Runtime vs PyTorch max abs diff {par.max_abs_diff:.2e} (tolerance {par.tolerance:g})"
    )
    if not par.ok:
        raise UserError(
            f"parity check failed: ONNX Runtime differs from PyTorch by {par.max_abs_diff:.3g} > {par.tolerance:g} (see {out_dir / 'report.json'})"
        )
    target = spec.train.target_accuracy
    if target is not None and metrics.get("val_accuracy", 0.0) < target:
        raise UserError(
            f"validation accuracy {metrics.get('val_accuracy', 0.0):.4f} is below train.target_accuracy {target}"
        )
    return report


def _last_metrics(path: Path) -> dict:
    try:
        lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
        return json.loads(lines[-1]) if lines else {}
    except (OSError, ValueError):
        return {}
