"""The data stage: a spec's `data:` section -> one `data.npz` (x, y, labels) that train.py reads.

Built-in datasets (scikit-learn's bundled files, xor, road images, ...) come from the registry
in `datasets/`. The readers raise `DataProblem` naming the `data:` field at fault; `prepare` turns
that into a located error before any training starts, and `specc evaluate` into a plain one
about the file it was given.
"""

from __future__ import annotations

import csv
import math
import zipfile
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path

import numpy as np

from . import datasets
from .diagnostics import DataProblem, SpecError, did_you_mean
from .files import atomic_file
from .pipeline import Compiled
from .text import TextSet, Vocab

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


@dataclass
class Dataset:
    x: np.ndarray  # the first model input
    y: np.ndarray
    labels: list[str] | None
    more: list[np.ndarray] = dataclass_field(
        default_factory=list
    )  # the other inputs, in spec order
    vocab: Vocab | None = None  # text data: the tokens behind the ids
    vocabs: dict | None = None  # seq2seq pairs: {"source": Vocab | None, "target": Vocab}
    # How a raw value (a file's pixels, a CSV row) became the first input: stamped into model.onnx
    # as specc.preprocess, so a client outside Python can prepare its own inputs alike.
    preprocess: dict = dataclass_field(default_factory=dict)


def prepare(compiled: Compiled) -> Dataset:
    spec, src = compiled.spec, compiled.parsed.source
    data = spec.data
    if data is None:
        raise SpecError(
            [
                src.error(
                    (),
                    "this spec has no 'data:' section to train on",
                    "add e.g. data: {type: builtin, name: digits}",
                )
            ]
        )
    base = compiled.path.resolve().parent
    try:
        if data.type == "builtin":
            ds = builtin(data, spec.train.seed)
        elif data.type == "npz":
            others = [
                n for n in list(compiled.parsed.inputs)[1:] if n not in compiled.task.noise_inputs
            ]
            ds = read_npz(base / data.path, data.x, data.y, tuple(others))
        elif data.type == "csv":
            ds = read_csv(base / data.path, data, compiled.task.targets)
        elif data.type == "text":
            ds = from_text(compiled.text, compiled)
        elif data.type == "pairs":
            ds = from_pairs(compiled.text, compiled)
        else:
            ds = read_images(
                base / data.path, data, tuple(next(iter(compiled.parsed.inputs.values())).shape)
            )
        if data.classes:
            ds = keep_classes(ds, [str(c) for c in data.classes])
        ds = fit(ds, compiled)
    except DataProblem as p:
        where = ("data", p.field) if p.field else ("data",)
        raise SpecError([src.error(where, p.message, p.hint)]) from None
    if spec.labels:
        ds.labels = list(spec.labels)
    return ds


def keep_classes(ds: Dataset, classes: list[str]) -> Dataset:
    """data.classes: only these classes' examples, their labels renumbered in the order given."""
    labels = ds.labels or [str(k) for k in range(int(ds.y.max()) + 1)]
    unknown = [c for c in classes if c not in labels]
    if unknown or ds.y.ndim != 1:
        raise DataProblem(
            "classes",
            f"'{unknown[0] if unknown else classes[0]}' is not a class of this data; its classes are {', '.join(labels)}",
        )
    old = [labels.index(c) for c in classes]
    keep = np.isin(ds.y, old)
    remap = np.full(len(labels), -1, dtype=np.int64)
    remap[old] = np.arange(len(old))
    ds.x, ds.y = ds.x[keep], remap[ds.y[keep]].astype(ds.y.dtype)
    ds.more = [m[keep] for m in ds.more]
    ds.labels = list(classes)
    return ds


def builtin(data, seed: int) -> Dataset:
    """A `data: {type: builtin}` set from the registry, with the generation keys it accepts, and
    how a raw value becomes an example (specc.preprocess, for clients outside Python)."""
    entry = datasets.get(data.name, "builtin")
    x, y, labels = entry.from_section(data, seed)
    return Dataset(x, y, labels, preprocess=entry.preprocessing(data))


def from_text(text: TextSet, compiled: Compiled) -> Dataset:
    """Token ids for the model's inputs: the ids first, the lengths for an int64 input of shape []."""
    spec, task = compiled.spec, compiled.task
    corpus = text.lengths is None
    if corpus != task.text_corpus:
        from .tasks import TASKS

        owners = " or ".join(
            f"task: {t.name}"
            for t in TASKS.values()
            if t.text_corpus == corpus and "text" in t.data_types
        )
        what = "a corpus" if corpus else "labelled texts"
        raise DataProblem(
            "path" if spec.data.path else None, f"{what} train {owners}, not task: {task.name}"
        )
    more = []
    for name, inp in list(compiled.parsed.inputs.items())[1:]:
        if inp.dtype != "int64" or inp.shape:
            raise DataProblem(
                None,
                f"text data gives token ids and their lengths; input '{name}' is neither",
                "declare the lengths input as {shape: [], dtype: int64}",
            )
        if corpus:
            more.append(np.full(len(text.x), text.x.shape[1], dtype=np.int64))
        else:
            more.append(text.lengths)
    return Dataset(text.x, text.y, text.labels, more, text.vocab)


def from_pairs(pairs, compiled: Compiled) -> Dataset:
    """Source, (source lengths,) decoder input; the target is the decoder's expected output."""
    inputs = list(compiled.parsed.inputs)
    more = [pairs.source_lengths] if "source_lengths" in inputs else []
    more.append(pairs.target_in)
    vocabs = {"source": pairs.source_vocab, "target": pairs.target_vocab}
    return Dataset(pairs.source, pairs.target_out, None, more, None, vocabs)


def read_npz(path: Path, x_key: str = "x", y_key: str = "y", more: tuple = ()) -> Dataset:
    """Arrays x and y; a model's other inputs (e.g. `lengths`) from the arrays of their names."""
    if not path.is_file():
        raise DataProblem("path", f"data file not found: {path}")
    if path.stat().st_size == 0:
        raise DataProblem("path", f"{path.name} is empty")
    try:
        f = np.load(path, allow_pickle=False)
        if not isinstance(f, np.lib.npyio.NpzFile):
            raise DataProblem(
                "path",
                f"{path.name} holds one array (.npy); the data is a .npz of arrays by name",
                "write it with numpy.savez(path, x=inputs, y=targets)",
            )
        with f:
            wanted = [("x", x_key), ("y", y_key)] + [(None, name) for name in more]
            for field, key in wanted:
                if key not in f.files:
                    raise DataProblem(
                        field,
                        f"{path.name} has no array '{key}'"
                        + ("" if field else " (for the model input of that name)"),
                        f"it holds: {', '.join(f.files)}",
                    )
            x, y = f[x_key], f[y_key]
            extra = [f[name] for name in more]
            labels = f["labels"] if "labels" in f.files else None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise DataProblem("path", f"cannot read {path.name} as .npz: {e}") from None
    for field, key, arr in [("x", x_key, x), ("y", y_key, y)] + [
        (None, n, a) for n, a in zip(more, extra, strict=True)
    ]:
        problem = _not_numbers(arr)
        if problem:
            raise DataProblem(field, f"{path.name}: array '{key}' {problem}")
    if labels is not None and labels.ndim != 1:
        raise DataProblem(
            "path", f"{path.name}: 'labels' is a list of class names, not {labels.shape}"
        )
    return Dataset(x, y, None if labels is None else [str(v) for v in labels], extra)


def _not_numbers(arr: np.ndarray) -> str | None:
    """Why an array cannot be a model's data, or None: one row per example, of real numbers."""
    if arr.ndim == 0:
        return "is a single value; it needs one row per example"
    if arr.dtype.kind not in "biuf":  # bool, integers, floats: not text, objects, complex, dates
        return f"holds {arr.dtype} values; the data must be numbers"
    return None


def read_csv(path: Path, data, targets: str, labels: list[str] | None = None) -> Dataset:
    """A header row, then one example per row; `labels` fixes the class order (else sorted)."""
    if not path.is_file():
        raise DataProblem("path", f"data file not found: {path}")
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f, delimiter=data.delimiter))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataProblem("path", f"cannot read {path.name} as CSV: {e}") from None
    if len(rows) < 2:
        raise DataProblem("path", f"{path.name} has no data rows")
    header, body = rows[0], rows[1:]
    columns_hint = f"columns: {', '.join(header)}"
    if data.label not in header:
        raise DataProblem(
            "label",
            f"{path.name} has no column '{data.label}'",
            did_you_mean(data.label, header) or columns_hint,
        )
    for field in ("features", "exclude"):
        unknown = [c for c in getattr(data, field) or [] if c not in header]
        if unknown:
            raise DataProblem(
                field,
                f"{path.name} has no column '{unknown[0]}'",
                did_you_mean(unknown[0], header) or columns_hint,
            )
    features = data.features or [c for c in header if c != data.label and c not in data.exclude]
    if data.label in features:
        raise DataProblem("features", f"the label column '{data.label}' is also a feature")
    cols = [header.index(c) for c in features]
    for line, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise DataProblem(
                "path", f"{path.name}:{line}: {len(row)} values, the header has {len(header)}"
            )
    try:
        x = np.array([[float(r[c]) for c in cols] for r in body], dtype=np.float32)
    except ValueError as e:
        raise DataProblem("path", f"{path.name}: a feature value is not a number ({e})") from None
    raw = [r[header.index(data.label)] for r in body]
    if targets == "values":
        try:
            y = np.array([float(v) for v in raw], dtype=np.float32)
            return Dataset(x, y, None, preprocess=csv_preprocess(features, data))
        except ValueError as e:
            raise DataProblem("label", f"{path.name}: a target is not a number ({e})") from None
    if labels is None:
        labels = sorted(
            set(raw),
            key=lambda v: (
                not v.lstrip("-").isdigit(),
                int(v) if v.lstrip("-").isdigit() else 0,
                v,
            ),
        )
    index = {v: i for i, v in enumerate(labels)}
    unknown = sorted(set(raw) - set(index))
    if unknown:
        raise DataProblem(
            "label", f"{path.name}: label '{unknown[0]}' is not one of the model's labels {labels}"
        )
    y = np.array([index[v] for v in raw], dtype=np.int64)
    return Dataset(x, y, list(labels), preprocess=csv_preprocess(features, data))


def csv_preprocess(features: list[str], data) -> dict:
    """A CSV row -> the input: these columns, in this order, as float32."""
    return {
        "source": "csv",
        "columns": list(features),
        "delimiter": data.delimiter,
        "label": data.label,
    }


def read_images(folder: Path, data, input_shape: tuple, labels: list[str] | None = None) -> Dataset:
    """One sub-folder per class, named by its label; every image resized to the input's size."""
    from PIL import Image, UnidentifiedImageError

    if not folder.is_dir():
        raise DataProblem("path", f"image folder not found: {folder}")
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataProblem(
            "path",
            f"{folder} has no class sub-folders",
            "put each class's images in a folder named after the class",
        )
    channels = 1 if data.color == "gray" else 3
    if len(input_shape) != 3 or input_shape[0] != channels:
        raise DataProblem(
            "color",
            f"{data.color} images have {channels} channel(s); the input is {input_shape}",
            f"declare the input as [{channels}, height, width]",
        )
    labels = list(labels) if labels is not None else classes
    unknown = [c for c in classes if c not in labels]
    if unknown:
        raise DataProblem("path", f"class folder '{unknown[0]}' is not one of the labels {labels}")
    height, width = tuple(data.resize) if data.resize else input_shape[1:]
    xs, ys = [], []
    for cls in classes:
        files = sorted(p for p in (folder / cls).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DataProblem("path", f"class folder {folder / cls} holds no images")
        for f in files:
            try:
                with Image.open(f) as img:
                    img = img.convert("L" if channels == 1 else "RGB")
                    img = img.resize((width, height), Image.Resampling.BILINEAR)
                    arr = np.asarray(img, dtype=np.float32) / 255.0
            except (OSError, UnidentifiedImageError) as e:
                raise DataProblem("path", f"cannot read image {f}: {e}") from None
            xs.append(arr[None] if channels == 1 else arr.transpose(2, 0, 1))
            ys.append(labels.index(cls))
    preprocess = {
        "source": "images",
        "raw": "an image file (PNG, JPEG, ...)",
        "steps": [
            # PIL's "L" is ITU-R 601-2 luma: L = R * 299/1000 + G * 587/1000 + B * 114/1000
            {"op": "color", "to": "gray" if channels == 1 else "rgb", "library": "PIL"},
            {"op": "resize", "to": [height, width], "mode": "bilinear", "library": "PIL"},
            {"op": "scale", "by": 1 / 255},
            {"op": "layout", "from": "HWC", "to": "CHW"},
        ],
    }
    return Dataset(np.stack(xs), np.array(ys, dtype=np.int64), labels, preprocess=preprocess)


def fit(ds: Dataset, compiled: Compiled) -> Dataset:
    """Reshape to the model's input shape and check targets against the model's output."""
    ir = compiled.ir
    (name, inp), *_ = compiled.parsed.inputs.items()
    for what, arr in (("inputs", ds.x), ("targets", ds.y), *(("inputs", m) for m in ds.more)):
        problem = _not_numbers(np.asarray(arr))
        if problem:
            raise DataProblem(None, f"the {what}: the array {problem}")
    want = tuple(inp.shape)
    if all(isinstance(d, int) for d in want) and ds.x.shape[1:] != want:
        if math.prod(ds.x.shape[1:]) != math.prod(want):
            raise DataProblem(
                None,
                f"the data's examples have shape {tuple(ds.x.shape[1:])}, but input '{name}' is {want}",
                "change the input shape, or the data's resize:",
            )
        ds.x = ds.x.reshape((len(ds.x), *want))
    if len(ds.x) != len(ds.y) or any(len(m) != len(ds.x) for m in ds.more):
        raise DataProblem(None, f"{len(ds.x)} inputs but {len(ds.y)} targets")
    data_inputs = [n for n in compiled.parsed.inputs if n not in compiled.task.noise_inputs]
    if len(data_inputs) != 1 + len(ds.more):
        raise DataProblem(
            None,
            f"the data gives {1 + len(ds.more)} input(s), the model declares {len(data_inputs)}",
        )
    if ds.vocab is not None:
        _check_vocab(ds.vocab, compiled)
    if ds.vocabs is not None:
        _check_vocabs(ds.vocabs, compiled)
    if len(ds.x) == 0:
        raise DataProblem(None, "the data holds no examples")
    for what, arr in (("inputs", ds.x), ("targets", ds.y)):
        if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
            bad = int((~np.isfinite(arr.reshape(len(arr), -1))).any(axis=1).sum())
            raise DataProblem(None, f"the {what} of {bad} example(s) hold NaN or infinity")
    problem = compiled.task.check_targets(ds.y, ir)
    if problem:
        raise DataProblem(None, problem)
    names = compiled.spec.labels or ds.labels
    if compiled.task.targets == "classes" and names and ir.num_classes not in (None, len(names)):
        raise DataProblem(
            None, f"the data names {len(names)} classes, but the model has {ir.num_classes}"
        )
    return ds


def _check_embeddings(compiled: Compiled, vocab_for) -> None:
    """Every token id must have an embedding row. `vocab_for(i)` gives layer i's vocabulary and
    the word a spec names its size with (vocab, source_vocab, target_vocab)."""
    for i, layer in enumerate(compiled.parsed.layers):
        vocab, word = vocab_for(i)
        if layer.type == "embedding" and vocab is not None and layer.num_embeddings < len(vocab):
            which = "the vocabulary" if word == "vocab" else f"the {word.split('_')[0]} vocabulary"
            raise DataProblem(
                None,
                f"{which} has {len(vocab)} tokens, but embedding '{layer.name}' has only "
                f"{layer.num_embeddings} rows",
                f"set num_embeddings: {word}",
            )


def _check_vocab(vocab: Vocab, compiled: Compiled) -> None:
    """Every token id must have an embedding row, and a language model one output per token."""
    _check_embeddings(compiled, lambda i: (vocab, "vocab"))
    n = compiled.ir.num_classes
    if compiled.task.text_corpus and n != len(vocab):
        raise DataProblem(
            None,
            f"the vocabulary has {len(vocab)} tokens, but the model predicts {n} classes",
            "end the model with {type: linear, out_features: vocab}",
        )


def _check_vocabs(vocabs: dict, compiled: Compiled) -> None:
    """Each side's embeddings cover its vocabulary; the decoder predicts one class per target token."""

    def vocab_for(i):
        side = "source" if compiled.parsed.section(i) == "encoder" else "target"
        return vocabs[side], f"{side}_vocab"

    _check_embeddings(compiled, vocab_for)
    n = compiled.ir.num_classes
    if n != len(vocabs["target"]):
        raise DataProblem(
            None,
            f"the target vocabulary has {len(vocabs['target'])} tokens, but the decoder predicts "
            f"{n} classes",
            "end the decoder with {type: linear, out_features: target_vocab}",
        )


def save(ds: Dataset, path: Path) -> None:
    arrays = {"x": ds.x, "y": ds.y}
    for i, extra in enumerate(ds.more, start=1):
        arrays[f"x{i}"] = extra
    if ds.labels:
        arrays["labels"] = np.array(ds.labels)
    with atomic_file(path, sum(a.nbytes for a in arrays.values())) as f:
        np.savez(f, **arrays)
