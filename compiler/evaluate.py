"""`specc evaluate`: score a trained model through ONNX Runtime (not PyTorch) on a dataset.

What is scored is what ships: model.onnx. Loss and metrics are computed here in numpy with the
same definitions as the generated train.py, so the figures can be compared with report.json.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .diagnostics import UserError
from .tasks import TASKS

SPLITS = ("train", "val", "test")


def evaluate(
    run: Path,
    data: str | None,
    device: str = "auto",
    batch_size: int = 1024,
    model_file: Path | None = None,
    keep_outputs: bool = False,
) -> dict:
    """Scores of the run's model.onnx (or `model_file`) on a split or a dataset."""
    import specc.runtime as sr

    run = Path(run)
    try:
        doc = json.loads((run / "spec.json").read_text(encoding="utf-8"))
        resolved = {**doc["spec"], "inputs": doc["inputs"]}  # every input, the task's too
    except (OSError, ValueError, KeyError):
        raise UserError(f"{run} is not a folder written by `specc train` (no spec.json)") from None
    task = TASKS[resolved["task"]]
    if task.evaluate_refusal or len(resolved["inputs"]) > 1:
        raise UserError(
            "specc evaluate scores models with one input and one target per example; "
            f"for this one, {run / 'report.json'} holds the scores of every split"
            + (f": {task.evaluate_refusal}" if task.evaluate_refusal else "")
        )
    model = sr.load(model_file or run, device=device)
    x, y, source = _dataset(run, data, resolved, model.labels)
    if task.targets == "inputs":  # scored on rebuilding its input, through the mean code
        y = x.astype(np.float32)
        train = {**resolved["train"], "loss": {"type": "mse"}, "metrics": ["mse", "mae"]}
        resolved = {**resolved, "train": train}
    out = model.run_batched(x, batch_size)
    if task.targets == "classes" and y.ndim > 1 and y.size == len(y):
        y = y.reshape(-1)  # (N, 1) class indices
    if (task.targets == "classes" and y.ndim != 1) or (
        task.targets in ("values", "labels") and y.size != out.size
    ):
        raise UserError(
            f"{source}: targets have shape {tuple(y.shape[1:])} per example; the model gives "
            f"{tuple(out.shape[1:])}"
            + (" (class scores: one class index each)" if task.targets == "classes" else "")
        )
    if task.targets == "classes" and len(y):  # scoring indexes the outputs by the targets
        n = max(len(model.labels or []), int(out.shape[-1]) if out.shape[-1] > 1 else 2)
        if y.min() < 0 or y.max() >= n:
            raise UserError(
                f"{source}: targets range over {int(y.min())}..{int(y.max())}, "
                f"but the model has {n} classes"
            )
    result = {"data": source, "examples": len(x), "device": model.device}
    if keep_outputs:
        result["outputs"] = out
    result["metrics"] = task.score(out, y, model.output_kind, resolved["train"])
    if task.targets == "classes":
        pred = predicted_classes(out, model.output_kind)
        n = max(len(model.labels or []), int(out.shape[-1]) if out.shape[-1] > 1 else 2)
        matrix = np.zeros((n, n), dtype=np.int64)
        np.add.at(matrix, (y, pred), 1)
        result["labels"] = model.labels or [str(i) for i in range(n)]
        result["confusion_matrix"] = matrix.tolist()  # rows: true class, columns: predicted
    return result


def _dataset(run: Path, data: str | None, spec: dict, labels) -> tuple:
    from . import data as stage
    from .spec_data import DATA_KINDS

    if data is None or data in SPLITS:
        try:
            with np.load(run / "data.npz") as f, np.load(run / "splits.npz") as s:
                split = data or ("test" if len(s["test"]) else "val")
                idx = s[split]
                x, y = f["x"][idx], f["y"][idx]
        except (OSError, KeyError) as e:
            raise UserError(f"{run}: cannot read the run's data.npz/splits.npz ({e})") from None
        if not len(idx):
            raise UserError(f"the run has no {split} split (set data.test_split in the spec)")
        return (*_cast(x, y, spec), f"{split} split of {run / 'data.npz'}")
    path = Path(data)
    settings = spec.get("data") or {}
    try:
        if path.is_dir():
            kind = DATA_KINDS["images"]
            images = (
                settings if settings.get("type") == "images" else {"type": "images", "path": "."}
            )
            shape = tuple(next(iter(spec["inputs"].values()))["shape"])
            ds = stage.read_images(path, kind.model_validate(images), shape, labels)
        elif path.suffix.lower() == ".csv":
            if settings.get("type") != "csv":
                raise UserError(
                    "--data: a .csv needs a model trained on CSV data (its label and feature columns)"
                )
            ds = stage.read_csv(
                path,
                DATA_KINDS["csv"].model_validate(settings),
                TASKS[spec["task"]].targets,
                labels,
            )
        else:
            keys = (
                (settings.get("x", "x"), settings.get("y", "y"))
                if settings.get("type") == "npz"
                else ("x", "y")
            )
            ds = stage.read_npz(path, *keys)
    except stage.DataProblem as p:
        raise UserError(
            f"--data {data}: {p.message}" + (f" ({p.hint})" if p.hint else "")
        ) from None
    shape = tuple(next(iter(spec["inputs"].values()))["shape"])
    x = ds.x
    if not len(x):
        raise UserError(f"--data {data}: the data holds no examples")
    for what, arr in (("inputs", x), ("targets", ds.y)):  # what training refuses, scoring does
        if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
            bad = int((~np.isfinite(arr.reshape(len(arr), -1))).any(axis=1).sum())
            raise UserError(f"--data {data}: the {what} of {bad} example(s) hold NaN or infinity")
    if TASKS[spec["task"]].targets == "classes" and len(ds.y):
        y = ds.y
        if not np.issubdtype(y.dtype, np.integer) and not (y == np.round(y)).all():
            raise UserError(f"--data {data}: classification targets must be whole class indices")
    if x.shape[1:] != shape and all(isinstance(d, int) for d in shape):
        if int(np.prod(x.shape[1:])) != int(np.prod(shape)):
            raise UserError(
                f"--data {data}: examples have shape {x.shape[1:]}, the model takes {shape}"
            )
        x = x.reshape((len(x), *shape))
    if len(x) != len(ds.y):
        raise UserError(f"--data {data}: {len(x)} inputs but {len(ds.y)} targets")
    return (*_cast(x, ds.y, spec), str(path))


def _cast(x, y, spec) -> tuple:
    dtype = next(iter(spec["inputs"].values())).get("dtype", "float32")
    x = x.astype(np.int64 if dtype == "int64" else np.float32)
    y = y.astype(TASKS[spec["task"]].target_dtype or y.dtype)
    return x, y


def predicted_classes(out: np.ndarray, kind: str) -> np.ndarray:
    if kind == "binary_logit":
        return (out.reshape(-1) > 0).astype(np.int64)
    if kind == "binary_probability":
        return (out.reshape(-1) > 0.5).astype(np.int64)
    return out.argmax(axis=-1)


def scores(out: np.ndarray, y: np.ndarray, kind: str, train: dict) -> dict[str, float]:
    """Mean loss and metrics, defined as in the generated train.py."""
    out = out.astype(np.float64)
    loss = train["loss"]
    result = {}
    if kind in ("logits", "probabilities", "log_probabilities"):
        if kind == "logits":
            z = out - out.max(axis=-1, keepdims=True)
            logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
        else:
            logp = np.log(np.clip(out, 1e-12, None)) if kind == "probabilities" else out
        eps = loss.get("label_smoothing", 0.0)
        nll = -logp[np.arange(len(y)), y]
        result["loss"] = float(np.mean((1 - eps) * nll - eps * logp.mean(axis=-1)))
    elif kind == "binary_logit":
        z, t = out.reshape(-1), y.astype(np.float64)
        result["loss"] = float(np.mean(np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))))
    elif kind == "binary_probability":
        p, t = np.clip(out.reshape(-1), 1e-7, 1 - 1e-7), y.astype(np.float64)
        result["loss"] = float(np.mean(-(t * np.log(p) + (1 - t) * np.log(1 - p))))
    else:
        err = (out - y.reshape(out.shape)).reshape(len(out), -1)
        kind_of_loss = loss["type"] if loss["type"] != "auto" else "mse"
        if kind_of_loss == "huber":
            d, a = loss.get("delta", 1.0), np.abs(err)
            result["loss"] = float(np.mean(np.where(a < d, 0.5 * a**2, d * (a - 0.5 * d))))
        else:
            result["loss"] = float(np.mean(err**2 if kind_of_loss == "mse" else np.abs(err)))
    metrics = train.get("metrics") or (["mse", "mae"] if kind == "values" else ["accuracy"])
    for m in metrics:
        if m == "accuracy":
            result[m] = float(np.mean(predicted_classes(out, kind) == y))
        elif m.startswith("top"):
            k = int(m[3:])
            top = np.argsort(-out, axis=-1)[:, :k]
            result[m] = float(np.mean((top == y[:, None]).any(axis=1)))
        else:
            err = (out - y.reshape(out.shape)).reshape(len(out), -1)
            result[m] = float(np.mean(err**2 if m == "mse" else np.abs(err)))
    return result


def format_result(result: dict) -> str:
    lines = [
        f"{result['data']}: {result['examples']} examples (ONNX Runtime on {result['device']})"
    ]
    lines += [f"  {k:<10} {v:.4f}" for k, v in result["metrics"].items()]
    if "confusion_matrix" in result:
        names = [str(label)[:8] for label in result["labels"]]
        width = max(6, *(len(n) for n in names))
        lines.append("confusion matrix (rows: true, columns: predicted)")
        lines.append(" " * (width + 2) + " ".join(n.rjust(width) for n in names))
        for name, row in zip(names, result["confusion_matrix"], strict=True):
            lines.append(f"  {name.rjust(width)}" + "".join(f" {v:>{width}}" for v in row))
    return "\n".join(lines)
