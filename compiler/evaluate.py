"""`specc evaluate`: score a trained model through ONNX Runtime (not PyTorch) on a dataset.

What is scored is what ships: model.onnx. Loss and metrics are computed here in numpy with the
same definitions as the generated train.py, so the figures can be compared with report.json.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from specc.runtime.contracts import BOS, EOS, IGNORE_INDEX, PAD, UNK, Meta
from specc.runtime.text import Vocab, pad_ids

from .diagnostics import UserError
from .tasks import TASKS

SPLITS = ("train", "val", "test")
TABLES = {".csv": "CSV", ".parquet": "Parquet"}  # files that only a model trained on such reads


@dataclass
class Examples:
    """What `specc evaluate` scores: inputs by model input name, targets, and where they came
    from; `texts` keeps a text task's raw targets (seq2seq: the target strings). Data read in
    one streaming pass (an image folder, a CSV) comes as `pieces` instead, each an Examples, so
    only one piece's inputs are in memory at a time."""

    feeds: dict
    y: np.ndarray
    source: str
    targets: list | None = None
    pieces: Iterator[Examples] | None = None

    def __len__(self) -> int:
        return len(self.y)

    def parts(self) -> Iterator[Examples]:
        """The examples a piece at a time: the pieces of a stream, or these examples whole."""
        return self.pieces if self.pieces is not None else iter([self])


@dataclass(frozen=True)
class Scoring:
    """Everything a task's `evaluate` hook may read: the run, its spec (spec.json, every input),
    the loaded model, the examples and model.onnx's output on them, and the decoding asked for."""

    run: Path
    spec: dict
    model: object  # specc.runtime.Model
    examples: Examples
    out: np.ndarray
    device: str
    decode: dict  # seq2seq: {"method": "greedy" | "beam", "beam_size": K}
    graphs: bool  # the run's other graphs may be used (not when scoring another model file)


def evaluate(
    run: Path,
    data: str | None,
    device: str = "auto",
    batch_size: int = 1024,
    model_file: Path | None = None,
    keep_outputs: bool = False,
    decode: dict | None = None,
) -> dict:
    """Scores of the run's model.onnx (or `model_file`) on a split or a dataset, as its task
    scores them (compiler/tasks/: `read_examples` reads new data, `evaluate` scores it).

    Streamed data is scored a piece at a time and the pieces' scores are combined weighted by
    their number of examples: exact for the tasks that read streamed data (classification,
    regression, autoencoders), whose every score is a mean over examples (or over elements,
    the same count in each example)."""
    import specc.runtime as sr

    run = Path(run)
    try:
        doc = json.loads((run / "spec.json").read_text(encoding="utf-8"))
        resolved = {**doc["spec"], "inputs": doc["inputs"]}  # every input, the task's too
    except (OSError, ValueError, KeyError):
        raise UserError(f"{run} is not a folder written by `specc train` (no spec.json)") from None
    task = TASKS[resolved["task"]]
    if task.evaluate_refusal:
        raise UserError(f"specc evaluate has nothing to score here: {task.evaluate_refusal}")
    model = sr.load(model_file or run, device=device)
    examples = task.read_examples(run, data, resolved, model)
    decode = decode or {"method": "greedy"}
    count, scored, outputs, matrix = 0, [], [], None
    for piece in examples.parts():
        if not len(piece):
            continue
        out = model.run_batched(piece.feeds, batch_size)
        if isinstance(out, dict):  # several outputs: the first is the model's answer
            out = out[model.outputs[0].name]
        _check_targets(task, model, piece, out)
        scoring = Scoring(run, resolved, model, piece, out, device, decode, model_file is None)
        scored.append((len(piece), task.evaluate(scoring)))
        count += len(piece)
        if keep_outputs:
            outputs.append(out)
        if task.targets == "classes" and out.ndim == 2 and piece.y.ndim == 1:
            n = _classes(model, out)
            matrix = np.zeros((n, n), dtype=np.int64) if matrix is None else matrix
            np.add.at(matrix, (piece.y, predicted_classes(out, model.output_kind)), 1)
    if not count:
        raise UserError(f"--data {data}: no examples")
    result = {"data": examples.source, "examples": count, "device": model.device}
    if keep_outputs:
        result["outputs"] = np.concatenate(outputs)
    result["metrics"] = scored[0][1] if len(scored) == 1 else _combined(scored)
    if matrix is not None:
        result["labels"] = model.labels or [str(i) for i in range(len(matrix))]
        result["confusion_matrix"] = matrix.tolist()  # rows: true class, columns: predicted
    return result


def _classes(model, out: np.ndarray) -> int:
    """How many classes a classifier's scores stand for (one logit: two)."""
    return max(len(model.labels or []), int(out.shape[-1]) if out.shape[-1] > 1 else 2)


def _check_targets(task, model, examples: Examples, out: np.ndarray) -> None:
    """Targets that fit the model's output, refused with a message before scoring reads them."""
    y = examples.y
    per_example = task.targets == "classes" and out.ndim <= 2  # a class (not one per position)
    if (per_example and y.ndim != 1) or (
        task.targets in ("values", "labels") and y.size != out.size
    ):
        raise UserError(
            f"{examples.source}: targets have shape {tuple(y.shape[1:])} per example; the model "
            f"gives {tuple(out.shape[1:])}"
            + (" (class scores: one class index each)" if task.targets == "classes" else "")
        )
    if per_example and len(y):  # scoring indexes the outputs by the targets
        n = _classes(model, out)
        if y.min() < 0 or y.max() >= n:
            raise UserError(
                f"{examples.source}: targets range over {int(y.min())}..{int(y.max())}, "
                f"but the model has {n} classes"
            )


def _combined(scored: list[tuple[int, dict]]) -> dict[str, float]:
    """Pieces' scores as one: each a mean over its examples, weighted by how many it holds."""
    total = sum(n for n, _ in scored)
    return {k: sum(n * m[k] for n, m in scored) / total for k in scored[0][1]}


def data_inputs(spec: dict) -> list[str]:
    """The model inputs the data fills, in order (not a GAN's noise)."""
    task = TASKS[spec["task"]]
    return [n for n in spec["inputs"] if n not in task.noise_inputs]


def read_split(run: Path, split: str | None, spec: dict) -> Examples:
    """A split of the run's own data.npz (x, x1, x2, ... in input order), by splits.npz."""
    try:
        with np.load(run / "data.npz") as f, np.load(run / "splits.npz") as s:
            split = split or ("test" if len(s["test"]) else "val")
            idx = s[split]
            names = data_inputs(spec)
            arrays = [f["x" if i == 0 else f"x{i}"][idx] for i in range(len(names))]
            y = f["y"][idx]
    except (OSError, KeyError) as e:
        raise UserError(f"{run}: cannot read the run's data.npz/splits.npz ({e})") from None
    if not len(idx):
        raise UserError(f"the run has no {split} split (set data.test_split in the spec)")
    feeds = dict(zip(names, arrays, strict=True))
    return _typed(feeds, y, spec, f"{split} split of {run / 'data.npz'}")


def read_examples(run: Path, data: str | None, spec: dict, model) -> Examples:
    """The common readers: a split of the run, a .npz (x, y, or arrays by input name), a .npy
    of inputs (for a model that rebuilds its input), a table like the spec's (a .csv, a
    .parquet, a saved `datasets` folder: the run's feature columns found by name), or a folder
    of images (one sub-folder per class). Tables and image folders are streamed."""
    from . import data as stage
    from .inputs import preprocessing
    from .spec_data import DATA_KINDS

    if data is None or data in SPLITS:
        return read_split(run, data, spec)
    task = TASKS[spec["task"]]
    path = Path(data)
    settings = spec.get("data") or {}
    kind = settings.get("type")
    suffix = path.suffix.lower()
    table = (kind == "csv" and suffix == ".csv") or (kind == "parquet" and suffix == ".parquet")
    if suffix in TABLES and not table:
        raise UserError(
            f"--data: a {suffix} needs a model trained on {TABLES[suffix]} data (its label and "
            "feature columns)"
        )
    if not path.exists():
        raise UserError(f"--data {data}: no such file or folder (or a split: train, val, test)")
    table = table or (kind == "datasets" and path.is_dir())
    names = data_inputs(spec)
    shape = tuple(spec["inputs"][names[0]]["shape"])
    more: list = []
    alone = {"path": path.name, "train": None, "validation": None, "test": None}  # this file only
    try:
        if table:  # streamed: a batch of rows at a time, the run's columns by name
            columns = preprocessing(model, names[0]).get("columns") or settings.get("features")
            section = {**settings, "features": columns, "exclude": [], **alone}
            ds = stage.read_table(
                path.parent,
                DATA_KINDS[kind].model_validate(section),
                task.targets,
                model.labels,
                shape,
            )
        elif path.is_dir():  # streamed: one piece of decoded images in memory at a time
            images = (
                settings if settings.get("type") == "images" else {"type": "images", "path": "."}
            )
            section = {**images, **alone}
            ds = stage.stream_images(
                path.parent, DATA_KINDS["images"].model_validate(section), shape, model.labels
            )
        elif path.suffix.lower() == ".npy":
            if task.targets != "inputs":
                raise UserError(
                    f"--data {data}: a .npy holds inputs only, and scoring needs targets too: "
                    "give a .npz with arrays x and y"
                    + (f" (or {', '.join(names)} and y)" if len(names) > 1 else "")
                )
            try:
                x = np.load(path, allow_pickle=False)
            except (ValueError, EOFError) as e:
                raise UserError(f"--data {data}: not a .npy array ({e or 'empty file'})") from None
            ds = stage.Dataset(x, x, None)
        else:
            x_key, y_key = (
                (settings.get("x", "x"), settings.get("y", "y"))
                if settings.get("type") == "npz"
                else ("x", "y")
            )
            with npz_archive(path) as f:
                keys = set(f.files)
            if len(names) > 1 and set(names) <= keys:  # arrays by input name
                ds = stage.read_npz(path, names[0], y_key, tuple(names[1:]))
            else:
                ds = stage.read_npz(
                    path, x_key, y_key, tuple(f"x{i}" for i in range(1, len(names)))
                )
            more = ds.more
    except stage.DataProblem as p:
        raise _unreadable(data, p) from None
    if ds.chunks is not None:
        pieces = (
            _checked(data, x, y, [], spec, names, shape)
            for x, _more, y, _split in _read_on(ds.chunks, data)
        )
        return Examples({}, np.zeros(0), str(path), pieces=pieces)
    if not len(ds.x):
        raise UserError(f"--data {data}: the data holds no examples")
    return _checked(data, ds.x, ds.y, more, spec, names, shape)


def _unreadable(data: str, p) -> UserError:
    return UserError(f"--data {data}: {p.message}" + (f" ({p.hint})" if p.hint else ""))


def _read_on(chunks: Iterator, data: str) -> Iterator:
    """A stream's pieces, a data problem met on the way (a damaged image) said as the user's."""
    from .diagnostics import DataProblem

    try:
        yield from chunks
    except DataProblem as p:
        raise _unreadable(data, p) from None


def _checked(data: str, x, y, more: list, spec: dict, names: list, shape: tuple) -> Examples:
    """Examples as the model takes them, refusing what training refuses."""
    task = TASKS[spec["task"]]
    for what, arr in (("inputs", x), ("targets", y)):
        if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
            bad = int((~np.isfinite(arr.reshape(len(arr), -1))).any(axis=1).sum())
            raise UserError(f"--data {data}: the {what} of {bad} example(s) hold NaN or infinity")
    if task.targets == "classes" and len(y):
        if not np.issubdtype(y.dtype, np.integer) and not (y == np.round(y)).all():
            raise UserError(f"--data {data}: classification targets must be whole class indices")
    if x.shape[1:] != shape and all(isinstance(d, int) for d in shape):
        if int(np.prod(x.shape[1:])) != int(np.prod(shape)):
            raise UserError(
                f"--data {data}: examples have shape {x.shape[1:]}, the model takes {shape}"
            )
        x = x.reshape((len(x), *shape))
    y = x if task.targets == "inputs" else y
    if len(x) != len(y):
        raise UserError(f"--data {data}: {len(x)} inputs but {len(y)} targets")
    return _typed({names[0]: x, **dict(zip(names[1:], more, strict=True))}, y, spec, str(data))


def npz_archive(path: Path):
    """A .npz of named arrays, or a UserError saying why the file is not one."""
    try:
        found = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise UserError(f"cannot read {path} as a .npz: {e or 'empty file'}") from None
    if isinstance(found, np.ndarray):
        raise UserError(f"{path} holds one .npy array, not a .npz archive of named arrays")
    return found


def _typed(feeds: dict, y, spec: dict, source: str) -> Examples:
    """Inputs as the model declares them (float32 or int64), targets as train.py makes them."""
    feeds = {
        name: value.astype(
            np.int64 if spec["inputs"][name].get("dtype", "float32") == "int64" else np.float32
        )
        for name, value in feeds.items()
    }
    dtype = TASKS[spec["task"]].target_dtype
    return Examples(feeds, y.astype(dtype) if dtype else y, source)


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
    width = max(10, *(len(k) for k in result["metrics"]))
    lines += [f"  {k:<{width}} {v:.4f}" for k, v in result["metrics"].items()]
    if "confusion_matrix" in result:
        names = [str(label)[:8] for label in result["labels"]]
        width = max(6, *(len(n) for n in names))
        lines.append("confusion matrix (rows: true, columns: predicted)")
        lines.append(" " * (width + 2) + " ".join(n.rjust(width) for n in names))
        for name, row in zip(names, result["confusion_matrix"], strict=True):
            lines.append(f"  {name.rjust(width)}" + "".join(f" {v:>{width}}" for v in row))
    return "\n".join(lines)


# ----------------------------------------------------------------------------- text tasks' files


def _vocab(model, key: str = Meta.VOCAB) -> Vocab:
    if key not in model.metadata:
        raise UserError(f"{model.path} holds no vocabulary ({key})")
    return Vocab.from_json(model.metadata[key])


def read_corpus(run: Path, data: str | None, spec: dict, model, otherwise) -> Examples:
    """A language model's text (a file, or a folder of .txt/.md files), windowed as the data
    stage windows a corpus; the last, shorter window is padded (its padding is not scored: the
    model reads left to right, so padding after a position cannot change it)."""
    if data is None or data in SPLITS:
        return otherwise(run, data, spec, model)
    path = Path(data)
    try:
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix.lower() in (".txt", ".md"))
            if not files:
                raise UserError(f"--data {data}: the folder holds no .txt or .md files")
            text = "\n\n".join(p.read_text(encoding="utf-8") for p in files)
        else:
            text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"--data {data}: cannot read it as UTF-8 text ({e})") from None
    vocab = _vocab(model)
    tokens = vocab.split(text)
    if not tokens:
        raise UserError(f"--data {data}: holds no text")
    index = vocab.index()
    stream = [BOS, *(index.get(t, UNK) for t in tokens), EOS]
    seq_len = int((spec.get("data") or {}).get("seq_len", 64))
    count = -(-(len(stream) - 1) // seq_len)
    x = np.full((count, seq_len), PAD, dtype=np.int64)
    y = np.full((count, seq_len), IGNORE_INDEX, dtype=np.int64)
    for i in range(count):
        window = stream[i * seq_len : i * seq_len + seq_len + 1]
        x[i, : len(window) - 1], y[i, : len(window) - 1] = window[:-1], window[1:]
    names = data_inputs(spec)
    feeds = {names[0]: x}
    if len(names) > 1:  # a lengths input: every window is read up to its last real token
        feeds[names[1]] = (y != IGNORE_INDEX).sum(axis=1).astype(np.int64)
    unknown = sum(1 for t in tokens if t not in index)
    note = f" ({unknown} token(s) outside the vocabulary read as <unk>)" if unknown else ""
    return Examples(feeds, y, f"{path}: {len(tokens)} {vocab.level} tokens{note}")


def read_labelled_texts(run: Path, data: str | None, spec: dict, model, otherwise) -> Examples:
    """A text classifier's .jsonl / .csv / .tsv (the spec's text and label fields), tokenized with
    the model's vocabulary (unknown tokens as <unk>) and cut at data.max_len, as in training."""
    from .diagnostics import DataProblem
    from .spec_data import DATA_KINDS
    from .text import _read_jsonl, _read_table

    settings = spec.get("data") or {}
    path = Path(data) if data is not None else None
    if (
        path is None
        or data in SPLITS
        or settings.get("type") != "text"
        or path.suffix.lower() not in (".jsonl", ".csv", ".tsv")
    ):
        return otherwise(run, data, spec, model)
    section = DATA_KINDS["text"].model_validate(
        {**settings, "generate": None, "count": None, "path": data}
    )
    try:
        texts, raw = (_read_jsonl if path.suffix.lower() == ".jsonl" else _read_table)(
            path, section
        )
    except (DataProblem, OSError) as e:
        raise UserError(f"--data {data}: {getattr(e, 'message', e)}") from None
    if not texts:
        raise UserError(f"--data {data}: holds no texts")
    vocab, labels = _vocab(model), model.labels or sorted(set(raw))
    unknown = sorted(set(raw) - set(labels))
    if unknown:
        raise UserError(f"--data {data}: label '{unknown[0]}' is not one of the model's {labels}")
    rows = [vocab.encode(t)[: section.max_len] or [UNK] for t in texts]
    ids, lengths = pad_ids(rows)
    names = data_inputs(spec)
    feeds = {names[0]: ids, **({names[1]: lengths} if len(names) > 1 else {})}
    y = np.array([labels.index(v) for v in raw], dtype=np.int64)
    return Examples(feeds, y, str(path))


def read_pairs(run: Path, data: str | None, spec: dict, model, otherwise) -> Examples:
    """A seq2seq model's `source<TAB>target` lines, tokenized with the run's vocabularies
    (unknown tokens as <unk>, as in training), teacher-forced for model.onnx."""
    from .diagnostics import DataProblem
    from .pairs import encode_targets, read_tsv

    if data is None or data in SPLITS:
        return otherwise(run, data, spec, model)
    try:
        sources, targets = read_tsv(Path(data))
    except DataProblem as p:
        raise UserError(f"--data {data}: {p.message}") from None
    from specc.runtime.contracts import SOURCE_LENGTHS, TARGET_IN

    info = json.loads(_step_meta(run)[Meta.SEQ2SEQ])
    if not info["source_vocab"]:
        raise UserError(
            f"--data {data}: this model reads pictures, not text: score it on a split "
            "(--data test, val or train)"
        )
    source_vocab, target_vocab = (
        Vocab.from_json(info[k]) for k in ("source_vocab", "target_vocab")
    )
    ids, lengths = pad_ids([source_vocab.encode(s) or [UNK] for s in sources])
    target_in, target_out = encode_targets([target_vocab.split(t) for t in targets], target_vocab)
    feeds = {data_inputs(spec)[0]: ids}
    if SOURCE_LENGTHS in spec["inputs"]:
        feeds[SOURCE_LENGTHS] = lengths
    feeds[TARGET_IN] = target_in
    return Examples(feeds, target_out, str(data), targets)


def _step_meta(run: Path) -> dict:
    import specc.runtime as sr

    try:
        return sr.load(run / "step.onnx", device="cpu").metadata
    except Exception as e:  # noqa: BLE001 - the runtime says what is wrong with the file
        raise UserError(f"{run}: cannot read step.onnx ({e})") from None
