"""The data stage: a spec's `data:` section -> one `data.npz` (x, y, labels) that train.py reads.

Built-in datasets (scikit-learn's bundled files, xor, road images, ...) come from the registry
in `datasets/`. The readers raise `DataProblem` naming the `data:` field at fault; `prepare` turns
that into a located error before any training starts, and `specc evaluate` into a plain one
about the file it was given.
"""

from __future__ import annotations

import csv
import errno
import math
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path

import numpy as np

from . import datasets
from .diagnostics import DataProblem, SpecError, UserError, did_you_mean
from .files import atomic_file
from .pipeline import Compiled
from .text import TextSet, Vocab

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
CHUNK_BYTES = 64 << 20  # about this much decoded data in memory at a time


def per_chunk(shape: tuple) -> int:
    """How many float32 examples of `shape` make about CHUNK_BYTES (at least one)."""
    return max(1, CHUNK_BYTES // (4 * math.prod(shape)))


SPLIT_CODES = {"train": 0, "val": 1, "test": 2}  # data.npz's `split` array, with separate files


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
    # A source read in one streaming pass (images, CSV, Parquet, datasets): x, y and more stay None
    # and `chunks` yields (x, more, y, split) pieces; save() writes them as they come.
    chunks: Iterator | None = None
    count: int = 0  # examples written, once a stream is saved
    shape: tuple = ()  # one example's shape, once a stream is saved


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
    shape = tuple(next(iter(compiled.parsed.inputs.values())).shape)  # the first input's
    try:
        if data.type == "builtin":
            ds = builtin(data, spec.train.seed)
        elif data.type == "npz":
            others = [
                n for n in list(compiled.parsed.inputs)[1:] if n not in compiled.task.noise_inputs
            ]
            ds = read_npz(base / data.path, data.x, data.y, tuple(others))
        elif data.type in ("csv", "parquet", "datasets"):
            ds = read_table(base, data, compiled.task.targets, shape=shape)
        elif data.type == "text":
            ds = from_text(compiled.text, compiled)
        elif data.type == "pairs":
            ds = from_pairs(compiled.text, compiled)
        else:
            ds = stream_images(base, data, shape)
        if data.classes:
            ds = keep_classes(ds, [str(c) for c in data.classes])
        ds = fit(ds, compiled)
    except DataProblem as p:
        raise _located(p, src) from None
    if ds.chunks is not None:
        ds.chunks = _located_stream(ds.chunks, src)
    if spec.labels:
        ds.labels = list(spec.labels)
    return ds


def _located(p: DataProblem, src) -> SpecError:
    where = ("data", p.field) if p.field else ("data",)
    return SpecError([src.error(where, p.message, p.hint)])


def _located_stream(chunks: Iterator, src) -> Iterator:
    """A problem found part way through a stream is still an error located at the spec."""
    try:
        yield from chunks
    except DataProblem as p:
        raise _located(p, src) from None


def keep_classes(ds: Dataset, classes: list[str]) -> Dataset:
    """data.classes: only these classes' examples, their labels renumbered in the order given
    (a stream: each piece as it comes)."""
    streamed = ds.chunks is not None
    labels = ds.labels or ([] if streamed else [str(k) for k in range(int(ds.y.max()) + 1)])
    unknown = [c for c in classes if c not in labels]
    if unknown or (not streamed and ds.y.ndim != 1):
        raise DataProblem(
            "classes",
            f"'{unknown[0] if unknown else classes[0]}' is not a class of this data; its classes are {', '.join(labels)}",
        )
    old = [labels.index(c) for c in classes]
    keep = np.isin(ds.y, old)
    remap = np.full(len(labels), -1, dtype=np.int64)
    remap[old] = np.arange(len(old))
    if streamed:

        def kept(chunks):
            for x, more, y, split in chunks:
                keep = np.isin(y, old)
                picked = None if split is None else split[keep]
                yield x[keep], [m[keep] for m in more], remap[y[keep]].astype(y.dtype), picked

        ds.chunks, ds.labels = kept(ds.chunks), list(classes)
        return ds
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


def _class_order(values) -> list[str]:
    """Class names in a stable order: integers numerically, then the rest alphabetically."""
    return sorted(
        set(values),
        key=lambda v: (
            not v.lstrip("-").isdigit(),
            int(v) if v.lstrip("-").isdigit() else 0,
            v,
        ),
    )


class Table:
    """A tabular source read in pieces: its columns, and batches of rows as {column: values}."""

    def __init__(self, path: Path, field: str):
        self.path, self.field, self.name = path, field, path.name
        self.columns: list[str] = []
        self.pictures: set[str] = set()  # columns of encoded images (PNG, JPEG, ... bytes)

    def batches(self, names: list[str]) -> Iterator[dict]:
        raise NotImplementedError

    def class_names(self, column: str) -> list[str] | None:
        """The names a column's integer codes stand for, where the file records them."""
        return None


class CsvTable(Table):
    def __init__(self, path: Path, field: str, delimiter: str):
        super().__init__(path, field)
        self.delimiter = delimiter
        with self._open() as f:
            try:
                self.columns = next(csv.reader(f, delimiter=delimiter))
            except StopIteration:
                raise DataProblem(field, f"{path.name} is empty (a header row expected)") from None
            except (UnicodeDecodeError, csv.Error) as e:
                raise DataProblem(field, f"cannot read {path.name} as CSV: {e}") from None

    def _open(self):
        try:
            return open(self.path, newline="", encoding="utf-8")
        except OSError as e:
            raise DataProblem(self.field, f"cannot read {self.path.name}: {e}") from None

    def batches(self, names: list[str], rows: int = 8192) -> Iterator[dict]:
        cols = [self.columns.index(n) for n in names]
        width = len(self.columns)
        with self._open() as f:
            reader = csv.reader(f, delimiter=self.delimiter)
            try:
                next(reader)
                batch: list[list[str]] = []
                for row in reader:
                    if len(row) != width:
                        raise DataProblem(
                            self.field,
                            f"{self.name}:{reader.line_num}: {len(row)} values, the header has {width}",
                        )
                    batch.append([row[c] for c in cols])
                    if len(batch) == rows:
                        yield dict(zip(names, zip(*batch), strict=True))
                        batch = []
                if batch:
                    yield dict(zip(names, zip(*batch), strict=True))
            except (UnicodeDecodeError, csv.Error) as e:
                raise DataProblem(self.field, f"cannot read {self.name} as CSV: {e}") from None


class ParquetTable(Table):
    def __init__(self, path: Path, field: str):
        super().__init__(path, field)
        pq = _optional("pyarrow.parquet", "pyarrow", field)
        try:
            self.file = pq.ParquetFile(path)
        except Exception as e:  # pyarrow raises its own ArrowInvalid, OSError, ...
            raise DataProblem(field, f"cannot read {path.name} as Parquet: {e}") from None
        self.columns = list(self.file.schema_arrow.names)
        self.pictures = {f.name for f in self.file.schema_arrow if _encoded(f.type)}

    def batches(self, names: list[str], rows: int = 8192) -> Iterator[dict]:
        for batch in self.file.iter_batches(batch_size=rows, columns=names):
            yield {n: batch.column(n).to_numpy(zero_copy_only=False) for n in names}


class HFTable(Table):
    def __init__(self, path: Path, field: str, dataset=None, split: str | None = None):
        super().__init__(path, field)
        if split:
            self.name = f"{path.name} (split {split})"
        self.dataset = dataset if dataset is not None else _load_from_disk(path, field)
        if not hasattr(self.dataset, "column_names") or isinstance(self.dataset.column_names, dict):
            raise DataProblem(
                field, f"{path.name} holds several splits; give it as path:, or one split's folder"
            )
        self.columns = list(self.dataset.column_names)
        features = self.dataset.features
        self.images = {n for n in self.columns if type(features[n]).__name__ == "Image"}
        encoded = {n for n in self.columns if _encoded(getattr(features[n], "pa_type", None))}
        self.pictures = self.images | encoded

    def batches(self, names: list[str], rows: int = 8192) -> Iterator[dict]:
        ds = self.dataset.select_columns(names)
        for name in self.images & set(names):  # the encoded bytes, decoded here as files are
            ds = ds.cast_column(name, type(ds.features[name])(decode=False))
        ds = ds.with_format("numpy")
        for start in range(0, len(ds), rows):
            yield ds[start : start + rows]

    def class_names(self, column: str) -> list[str] | None:
        return list(getattr(self.dataset.features.get(column), "names", None) or []) or None


def _encoded(arrow_type) -> bool:
    """An Arrow column of encoded files: binary, or the {bytes, path} struct `datasets` writes."""
    import pyarrow as pa

    if arrow_type is None:
        return False
    if pa.types.is_struct(arrow_type):
        return arrow_type.get_field_index("bytes") >= 0
    return pa.types.is_binary(arrow_type) or pa.types.is_large_binary(arrow_type)


def _pictures(values, table: Table, column: str, shape: tuple, first: int) -> np.ndarray:
    """A column of encoded images -> one row of C*H*W values per example, decoded as an image
    folder's files are (`picture`); a {bytes, path} value without bytes is read from its path.
    `first`: the table's row number of the first value."""
    rows = []
    for i, value in enumerate(values):
        if isinstance(value, dict):
            value = value.get("bytes") or (table.path.parent / str(value.get("path")))
        where = f"{table.name}: row {first + i + 1}, column '{column}'"
        if value is None or (isinstance(value, bytes) and not value):
            raise DataProblem(table.field, f"{where} holds no image")
        what = f"the image at {where}"
        rows.append(picture(value, shape, table.field, what).reshape(-1))
    return np.stack(rows)


def _optional(module: str, package: str, field: str):
    """An optional reader's library, or a clear word on installing it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise DataProblem(
            field, f"reading this data needs {package}", f"pip install {package} (or specc[data])"
        ) from None


def _load_from_disk(path: Path, field: str):
    datasets_lib = _optional("datasets", "datasets", field)
    if not path.is_dir():
        raise DataProblem(field, f"data folder not found: {path} (a save_to_disk folder expected)")
    try:
        return datasets_lib.load_from_disk(str(path))
    except Exception as e:  # datasets raises FileNotFoundError, its own errors, ...
        raise DataProblem(
            field, f"cannot read {path.name} with datasets.load_from_disk: {e}"
        ) from None


def open_tables(base: Path, data) -> list[tuple[Table, str]]:
    """(table, split) for each file the section names; a saved DatasetDict gives its splits."""
    tables = []
    for field, name, split in data.files():
        path = base / name
        if data.type == "datasets":
            ds = _load_from_disk(path, field)
            if isinstance(getattr(ds, "column_names", None), dict):  # a DatasetDict
                if field != "path":
                    raise DataProblem(field, f"{path.name} holds several splits, not one")
                known = {"train": "train", "validation": "val", "valid": "val", "test": "test"}
                if "train" not in ds:
                    raise DataProblem(
                        field, f"{path.name} has no 'train' split", f"it holds: {', '.join(ds)}"
                    )
                tables += [(HFTable(path, field, ds[k], k), known[k]) for k in ds if k in known]
                continue
            tables.append((HFTable(path, field, ds), split))
            continue
        if not path.is_file():
            raise DataProblem(field, f"data file not found: {path}")
        if data.type == "csv":
            tables.append((CsvTable(path, field, data.delimiter), split))
        else:
            tables.append((ParquetTable(path, field), split))
    return tables


def _numbers(values, table: Table, column: str, what: str = "feature") -> np.ndarray:
    """A column's values as float32, one row per example (a list column gives several)."""
    arr = np.asarray(values)
    if arr.dtype == object:  # fixed-length lists of numbers (Parquet, datasets)
        try:
            arr = np.stack([np.asarray(v, dtype=np.float32) for v in arr])
        except (ValueError, TypeError) as e:
            raise DataProblem(
                table.field, f"{table.name}: column '{column}' is not numbers of one length ({e})"
            ) from None
    try:
        arr = arr.astype(np.float32)
    except ValueError as e:
        raise DataProblem(
            table.field, f"{table.name}: a {what} value is not a number ({e})"
        ) from None
    return arr.reshape(len(arr), -1)


def read_table(
    base: Path, data, targets: str, labels: list[str] | None = None, shape: tuple | None = None
) -> Dataset:
    """CSV, Parquet or a saved `datasets` folder: the feature columns as x (a list column adds
    its length, a column of encoded images its decoded pixels, for an input of `shape`), the
    label column as y; read in batches, never whole. `labels` fixes the class order (else the
    file's class names, or the values sorted)."""
    tables = open_tables(base, data)
    first = tables[0][0]
    for table, _ in tables:
        columns_hint = f"{table.name} has the columns: {', '.join(table.columns)}"
        if data.label not in table.columns:
            raise DataProblem(
                "label",
                f"{table.name} has no column '{data.label}'",
                did_you_mean(data.label, table.columns) or columns_hint,
            )
        for field in ("features", "exclude"):
            unknown = [c for c in getattr(data, field) or [] if c not in table.columns]
            if unknown:
                raise DataProblem(
                    field,
                    f"{table.name} has no column '{unknown[0]}'",
                    did_you_mean(unknown[0], table.columns) or columns_hint,
                )
    features = data.features or [
        c for c in first.columns if c != data.label and c not in data.exclude
    ]
    if data.label in features:
        raise DataProblem("features", f"the label column '{data.label}' is also a feature")
    if not features:
        raise DataProblem("features", f"{first.name} has no feature columns besides the label")
    for table, _ in tables[1:]:
        missing = [c for c in features if c not in table.columns]
        if missing:
            raise DataProblem(table.field, f"{table.name} has no column '{missing[0]}'")
    classes = targets != "values"
    coded = first.class_names(data.label) if classes else None
    if classes and labels is None:
        labels = coded or _class_order(
            {
                str(v)
                for table, _ in tables
                for b in table.batches([data.label])
                for v in b[data.label]
            }
        )
    index = {v: i for i, v in enumerate(labels or [])}

    def targets_of(values, table: Table) -> np.ndarray:
        if not classes:
            return _numbers(values, table, data.label, "target")[:, 0]
        if coded:
            values = [coded[int(v)] for v in values]
        raw = [str(v) for v in values]
        unknown = sorted(set(raw) - set(index))
        if unknown:
            raise DataProblem(
                "label",
                f"{table.name}: label '{unknown[0]}' is not one of the model's labels {labels}",
            )
        return np.array([index[v] for v in raw], dtype=np.int64)

    pictured = sorted({c for table, _ in tables for c in table.pictures} & set(features))
    if pictured and not (
        shape and len(shape) == 3 and shape[0] in (1, 3) and all(isinstance(d, int) for d in shape)
    ):
        raise DataProblem(
            first.field,
            f"{first.name}: column '{pictured[0]}' holds images, but the input is {shape}",
            "declare the input as [1 or 3 channels, height, width]",
        )
    per_batch = per_chunk(shape) if pictured else 8192

    def chunks():
        rows = 0
        for table, split in tables:
            for batch in table.batches([*features, data.label], per_batch):
                x = np.concatenate(
                    [
                        _pictures(batch[c], table, c, shape, rows)
                        if c in table.pictures
                        else _numbers(batch[c], table, c)
                        for c in features
                    ],
                    axis=1,
                )
                y = targets_of(batch[data.label], table)
                rows += len(x)
                yield x, [], y, np.full(len(x), SPLIT_CODES[split], np.uint8) if split else None
        if not rows:
            raise DataProblem(tables[0][0].field, f"{first.name} has no data rows")

    preprocess = (
        picture_steps(*shape) | {"columns": list(features), "label": data.label}
        if pictured
        else csv_preprocess(features, data)
        if data.type == "csv"
        else {"source": data.type, "columns": list(features), "label": data.label}
    )
    ds = Dataset(None, None, list(labels) if labels else None, preprocess=preprocess)
    ds.chunks = chunks()
    return ds


def gathered(ds: Dataset) -> Dataset:
    """A stream's pieces joined in memory (for tests that compare a stream with its source)."""
    if ds.chunks is None:
        return ds
    xs, ys = [], []
    for x, _more, y, _split in ds.chunks:
        xs.append(x)
        ys.append(y)
    ds.x, ds.y, ds.chunks = np.concatenate(xs), np.concatenate(ys), None
    return ds


def csv_preprocess(features: list[str], data) -> dict:
    """A CSV row -> the input: these columns, in this order, as float32."""
    return {
        "source": "csv",
        "columns": list(features),
        "delimiter": data.delimiter,
        "label": data.label,
    }


def picture(source, shape: tuple, field: str, what: str) -> np.ndarray:
    """An encoded picture (a file's path, or its bytes) -> (C, H, W) float32 in [0, 1]: PIL's
    gray or RGB, PIL's bilinear resize to H x W, / 255 (picture_steps says so in the model)."""
    import io

    from PIL import Image, UnidentifiedImageError

    channels, height, width = shape
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as img:
            img = img.convert("L" if channels == 1 else "RGB")
            img = img.resize((width, height), Image.Resampling.BILINEAR)
            arr = np.asarray(img, dtype=np.float32) / 255.0
    except (OSError, UnidentifiedImageError) as e:
        raise DataProblem(field, f"cannot read {what}: {e}") from None
    return arr[None] if channels == 1 else arr.transpose(2, 0, 1)


def picture_steps(channels: int, height: int, width: int) -> dict:
    """How `picture` made an input from an image file, as model.onnx records it."""
    return {
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


def stream_images(base: Path, data, input_shape: tuple, labels: list[str] | None = None) -> Dataset:
    """Image folders with one sub-folder per class, named by its label; every image resized to
    the input's size, decoded a chunk at a time."""
    channels = 1 if data.color == "gray" else 3
    if len(input_shape) != 3 or input_shape[0] != channels:
        raise DataProblem(
            "color",
            f"{data.color} images have {channels} channel(s); the input is {input_shape}",
            f"declare the input as [{channels}, height, width]",
        )
    height, width = tuple(data.resize) if data.resize else input_shape[1:]
    files: list[tuple[Path, int, str]] = []
    for field, name, split in data.files():
        folder = base / name
        if not folder.is_dir():
            raise DataProblem(field, f"image folder not found: {folder}")
        classes = sorted(
            p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")
        )
        if not classes:
            raise DataProblem(
                field,
                f"{folder} has no class sub-folders",
                "put each class's images in a folder named after the class",
            )
        labels = list(labels) if labels is not None else classes
        unknown = [c for c in classes if c not in labels]
        if unknown:
            raise DataProblem(
                field, f"class folder '{unknown[0]}' is not one of the labels {labels}"
            )
        for cls in classes:
            found = sorted(
                p for p in (folder / cls).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES
            )
            if not found:
                raise DataProblem(field, f"class folder {folder / cls} holds no images")
            files += [(f, labels.index(cls), split) for f in found]
    size = per_chunk((channels, height, width))

    def chunks():
        for start in range(0, len(files), size):
            part = files[start : start + size]
            x = np.stack(
                [picture(f, (channels, height, width), "path", f"image {f}") for f, _, _ in part]
            )
            y = np.array([c for _, c, _ in part], dtype=np.int64)
            split = np.array([SPLIT_CODES[s] for _, _, s in part], np.uint8) if part[0][2] else None
            yield x, [], y, split

    ds = Dataset(None, None, labels, preprocess=picture_steps(channels, height, width))
    ds.chunks = chunks()
    return ds


def fit(ds: Dataset, compiled: Compiled) -> Dataset:
    """Reshape to the model's input shape and check targets against the model's output (a
    stream: each piece as it comes)."""
    (name, inp), *_ = compiled.parsed.inputs.items()
    augment = compiled.spec.data.augment
    if augment is not None and len(inp.shape) != 3:
        raise DataProblem(
            "augment",
            f"augment: changes images; input '{name}' has shape {list(inp.shape)}, not "
            "[channels, height, width]",
        )
    if ds.chunks is None:
        return _fit(ds, compiled)
    ds.chunks = _fit_stream(ds.chunks, ds.labels, compiled)
    return ds


def _fit_stream(chunks: Iterator, labels, compiled: Compiled) -> Iterator:
    rows = 0
    for x, more, y, split in chunks:
        piece = _fit(Dataset(x, y, labels, more), compiled)
        rows += len(piece.x)
        yield piece.x, piece.more, piece.y, split
    if not rows:
        raise DataProblem(None, "the data holds no examples")


def _fit(ds: Dataset, compiled: Compiled) -> Dataset:
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
    """Write data.npz in one pass over the data: each array's pieces go to a raw file beside it,
    then into an uncompressed .npz (np.savez's format, so np.load reads it) whose members
    train.py memory-maps (open_npz). Arrays: x, x1, x2, ... (inputs), y, labels, and split
    (0 train, 1 validation, 2 test) when the data came as separate files."""
    chunks = ds.chunks if ds.chunks is not None else iter([(ds.x, ds.more, ds.y, None)])
    parts = tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    arrays: dict[str, list] = {}  # name -> [raw file, dtype, one row's shape, rows]
    try:
        try:
            for x, more, y, split in chunks:
                named = {"x": x, **{f"x{i}": m for i, m in enumerate(more, start=1)}, "y": y}
                if split is not None:
                    named["split"] = split
                for key, arr in named.items():
                    arr = np.ascontiguousarray(arr)
                    if key not in arrays:
                        raw = open(Path(parts) / key, "wb")  # noqa: SIM115 (closed below)
                        arrays[key] = [raw, arr.dtype, arr.shape[1:], 0]
                    entry = arrays[key]
                    if arr.dtype != entry[1] or arr.shape[1:] != entry[2]:
                        raise DataProblem(
                            None,
                            f"the data's examples change shape part way: {entry[2]} then "
                            f"{arr.shape[1:]}",
                        )
                    entry[0].write(arr.tobytes())
                    entry[3] += len(arr)
        except OSError as e:
            if e.errno in (errno.ENOSPC, errno.EDQUOT):
                written = sum(e[3] * e[1].itemsize * math.prod(e[2]) for e in arrays.values())
                raise UserError(
                    f"no space left on the device to write {path} ({written / 1e6:.1f} MB of "
                    "examples read so far; it needs about twice that while written); free some "
                    "and rerun"
                ) from None
            raise
        finally:
            for entry in arrays.values():
                entry[0].close()
        if ds.labels:
            labels = np.array(ds.labels)
            arrays["labels"] = [None, labels.dtype, (), len(labels)]
        size = sum(e[3] * e[1].itemsize * math.prod(e[2]) for e in arrays.values())
        with atomic_file(path, size) as f, zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as z:
            for key, (raw, dtype, tail, rows) in arrays.items():
                with z.open(key + ".npy", "w", force_zip64=True) as member:
                    header = {
                        "descr": np.lib.format.dtype_to_descr(dtype),
                        "fortran_order": False,
                        "shape": (rows, *tail),
                    }
                    np.lib.format.write_array_header_2_0(member, header)
                    if raw is None:
                        member.write(labels.tobytes())
                        continue
                    with open(raw.name, "rb") as src:
                        shutil.copyfileobj(src, member, 1 << 20)
    finally:
        shutil.rmtree(parts, ignore_errors=True)
    ds.count = arrays["x"][3]
    ds.shape = tuple(arrays["x"][2])
    if ds.chunks is not None:  # what export and parity read: the written arrays, memory-mapped
        from .train.data import open_npz

        written = open_npz(path)
        ds.x, ds.y, ds.chunks = written["x"], written["y"], None
        ds.more = [written[f"x{i}"] for i in range(1, len(written)) if f"x{i}" in written]


def augmented_examples(
    data_npz: Path, settings: dict, seed: int, path: Path, count: int = 8
) -> None:
    """A picture of data.augment at work: the first `count` images of the data in the top row, then
    four rows of the draws train.py makes for them (as in epochs 1-4)."""
    import torch

    from .train.data import augment, augment_generator, open_npz
    from .train.images import as_images, write_grid

    x = torch.from_numpy(np.array(open_npz(data_npz)["x"][:count], dtype=np.float32))
    rows = [as_images(x)]
    for epoch in range(1, 5):
        rows.append(
            as_images(augment(x, augment_generator(seed, epoch, 0, 0), settings).clamp(0, 1))
        )
    write_grid(rows, path, scale=max(1, 96 // max(x.shape[-2:])))
