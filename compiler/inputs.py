"""`specc predict --input`: what users have (an image, a folder of images, CSV rows, lines of
text, .npy/.npz arrays) -> the model's inputs, prepared as the run's data stage prepared its own.

How raw values became the model's input is in model.onnx's metadata (Meta.PREPROCESS, written
from the data set's registry entry or the data reader), so a run folder needs nothing else:
pictures are turned gray or RGB, resized and scaled as the data stage did; CSV rows give the
run's feature columns in the run's order (standardization is inside the graph); text is split
and looked up in the model's vocabulary, padded, with each text's length for a lengths input.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from specc.runtime.contracts import UNK, Meta
from specc.runtime.text import Vocab, pad_ids

from .diagnostics import UserError
from .evaluate import npz_archive

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
TEXT_SUFFIXES = (".txt", ".jsonl")


def roles(model) -> dict[str, str]:
    """What each model input holds: tokens, lengths, image, features or values (the rule of
    runtime/describe.py's specc.json)."""
    vocab = Meta.VOCAB in model.metadata
    out = {}
    for info in model.inputs:
        dims = info.shape[1:]
        if info.dtype == "int64" and len(dims) == 1 and vocab:
            out[info.name] = "tokens"
        elif info.dtype == "int64" and not dims:
            out[info.name] = "lengths"
        elif info.dtype == "float32" and len(dims) == 3 and dims[0] in (1, 3):
            out[info.name] = "image"
        else:
            out[info.name] = "features" if len(dims) == 1 else "values"
    return out


def read(values: list[str], model) -> tuple[dict, list[str] | None]:
    """({input name: array}, a name per example or None) from the --input values (a folder of
    images: see `pieces`)."""
    if not values:
        raise UserError("give the inputs with --input (a file, a folder of images, or NAME=FILE)")
    named = [v for v in values if "=" in v and not Path(v).exists()]
    if named:
        if len(named) != len(values):
            raise UserError("give either one --input FILE, or --input NAME=FILE for every input")
        feeds = {}
        for value in values:
            name, file = value.split("=", 1)
            if name not in {i.name for i in model.inputs}:
                raise UserError(
                    f"--input {value}: the model has no input '{name}' (its inputs: "
                    + ", ".join(i.name for i in model.inputs)
                    + ")"
                )
            feeds[name] = _one_input(Path(file), name, model)
        return feeds, None
    if len(values) > 1:
        raise UserError(
            "several --input values: give NAME=FILE for each input of a multi-input model"
        )
    return _whole(values[0], model)


def pieces(values: list[str], model) -> Iterator[tuple[dict, list[str] | None]]:
    """The --input values a piece at a time: a folder of images is decoded about
    data.CHUNK_BYTES at a time (so a folder larger than memory streams through), anything else
    comes whole, as `read` gives it."""
    from . import data as stage

    path = Path(values[0]) if len(values) == 1 else None
    if path is None or not path.is_dir():
        yield read(values, model)
        return
    first = _image_input(values[0], model)
    files = image_files(path)
    size = stage.per_chunk(next(i for i in model.inputs if i.name == first).shape[1:])
    for start in range(0, len(files), size):
        part = files[start : start + size]
        x = np.stack([read_image(f, model, first) for f in part])
        yield {first: x}, [str(f.relative_to(path)) for f in part]


def _image_input(value: str, model) -> str:
    """The input that --input's pictures fill, or a UserError when the model reads none."""
    kinds = roles(model)
    first = next(n for n, k in kinds.items() if k != "lengths")
    if kinds.get(first) != "image":
        raise UserError(f"--input {value}: images need a model that reads pictures")
    return first


def _whole(value: str, model) -> tuple[dict, list[str] | None]:
    """One --input for the whole model: its data input, and the lengths that go with tokens."""
    kinds = roles(model)
    first = model.inputs[0].name
    path = Path(value)
    if value == "-" or path.suffix.lower() in TEXT_SUFFIXES:
        if "tokens" not in kinds.values():
            raise UserError(f"--input {value}: text needs a model that reads text (token ids)")
        return _texts(_lines(value), model, kinds), None
    if not path.exists():
        raise UserError(f"--input {value}: no such file or folder")
    if path.suffix.lower() == ".npz":
        with npz_archive(path) as f:
            arrays = {k: f[k] for k in f.files}
        names = [i.name for i in model.inputs]
        if set(names) <= set(arrays):
            return {n: arrays[n] for n in names}, None
        if len(names) == 1 and "x" in arrays:
            return {first: arrays["x"]}, None
        raise UserError(
            f"--input {value} holds {', '.join(sorted(arrays))}; the model takes "
            + ", ".join(names)
            + " (arrays by input name, or x for a model with one input)"
        )
    if len(model.inputs) > 1 and path.suffix.lower() not in IMAGE_SUFFIXES:
        raise UserError(
            f"the model takes {len(model.inputs)} inputs ("
            + ", ".join(i.name for i in model.inputs)
            + "): give a .npz holding each by name, --input NAME=FILE for each"
            + (", or text lines (.txt, .jsonl, -)" if "tokens" in kinds.values() else "")
        )
    if path.suffix.lower() in IMAGE_SUFFIXES:
        name = _image_input(value, model)
        return {name: read_image(path, model, name)[None]}, [path.name]
    return {first: _one_input(path, first, model)}, None


def _one_input(path: Path, name: str, model) -> np.ndarray:
    if not path.is_file():
        raise UserError(f"--input {path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            return np.load(path, allow_pickle=False)
        except (ValueError, EOFError) as e:  # EOFError: an empty file (click would say "Aborted!")
            raise UserError(f"{path} is not a .npy array: {e}") from None
    if suffix in IMAGE_SUFFIXES:
        return read_image(path, model, name)[None]
    if suffix == ".csv":
        return read_csv_rows(path, model, name)
    raise UserError(
        f"--input {path}: cannot read a {suffix or 'file without a suffix'} (use .npy, .npz, .csv, "
        "an image, a folder of images, or text lines in .txt / .jsonl)"
    )


# ----------------------------------------------------------------------------- pictures


def image_files(path: Path) -> list[Path]:
    """A picture, or the pictures in a folder (and its sub-folders), in name order."""
    if not path.exists():
        raise UserError(f"{path}: no such file or folder")
    if path.is_file():
        return [path]
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise UserError(f"--input {path}: the folder holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return files


def preprocessing(model, name: str) -> dict:
    """How the run's data stage made input `name` from raw values (Meta.PREPROCESS), or {}."""
    return (json.loads(model.metadata.get(Meta.PREPROCESS, "{}")) or {}).get(name) or {}


def read_image(path: Path, model, name: str) -> np.ndarray:
    """A picture file -> (C, H, W) float32 in [0, 1], made as the data stage made its pictures:

    - an image folder's run: PIL's gray (ITU-R 601-2 luma) or RGB, PIL's bilinear resize to the
      input's size, / 255 (exactly data.stream_images);
    - a built-in picture set whose steps resize raw pictures (digits: 8x8, then bilinear with
      half-pixel centres, no antialiasing): a picture of the raw size is scaled to [0, 1] and
      resized by the same rule; a picture of another size is resized straight to the input's;
    - otherwise (pictures from a .npz, generated ones): gray or RGB, bilinear to the input's
      size, / 255.
    """
    from PIL import Image, UnidentifiedImageError

    info = next(i for i in model.inputs if i.name == name)
    channels, height, width = info.shape[1:]
    how = preprocessing(model, name)
    try:
        with Image.open(path) as img:
            img = img.convert("L" if channels == 1 else "RGB")
            raw = how.get("raw_dims")
            steps = {s.get("op"): s for s in how.get("steps", [])}
            if raw and (img.height, img.width) == tuple(raw[1:]) and "resize" in steps:
                x = np.asarray(img, dtype=np.float32) / 255.0
                x = x[None] if channels == 1 else x.transpose(2, 0, 1)
                return bilinear(x, height, width)
            if (img.height, img.width) != (height, width):
                img = img.resize((width, height), Image.Resampling.BILINEAR)
            x = np.asarray(img, dtype=np.float32) / 255.0
    except (OSError, UnidentifiedImageError) as e:
        raise UserError(f"cannot read image {path}: {e}") from None
    return x[None] if channels == 1 else x.transpose(2, 0, 1)


def bilinear(x: np.ndarray, height: int, width: int) -> np.ndarray:
    """(C, h, w) -> (C, height, width): bilinear with half-pixel centres and no antialiasing,
    as torch's interpolate(mode="bilinear", align_corners=False) computes it."""

    def axis(n_in: int, n_out: int):
        src = np.maximum((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0.0)
        lo = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, (src - lo).astype(np.float32)

    top, bottom, wy = axis(x.shape[1], height)
    left, right, wx = axis(x.shape[2], width)
    rows = x[:, top] * (1 - wy)[None, :, None] + x[:, bottom] * wy[None, :, None]
    out = rows[:, :, left] * (1 - wx)[None, None, :] + rows[:, :, right] * wx[None, None, :]
    return out.astype(np.float32)


# ----------------------------------------------------------------------------- tables, text


def read_csv_rows(path: Path, model, name: str) -> np.ndarray:
    """CSV rows -> (N, F) float32: the run's feature columns by name, in the run's order, when
    the data stage named them (a label column, if present, is left out); else every column."""
    how = preprocessing(model, name)
    columns = how.get("columns")
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f, delimiter=how.get("delimiter", ",")))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise UserError(f"cannot read {path}: {e}") from None
    rows = [r for r in rows if r]
    if not rows:
        raise UserError(f"{path} is empty")
    if columns:
        header = rows[0]
        missing = [c for c in columns if c not in header]
        if missing:
            raise UserError(
                f"{path}: no column '{missing[0]}'; the model reads the columns "
                + ", ".join(columns)
                + " (a header row names them)"
            )
        body, cols = rows[1:], [header.index(c) for c in columns]
    else:
        head_is_text = any(not _number(v) for v in rows[0])
        body = rows[1:] if head_is_text else rows
        cols = list(range(len(body[0]))) if body else []
    try:
        x = np.array([[float(r[c]) for c in cols] for r in body], dtype=np.float32)
    except (ValueError, IndexError) as e:
        raise UserError(f"{path}: a value is not a number, or a row is short ({e})") from None
    if not len(x):
        raise UserError(f"{path} holds no rows")
    return x


def _number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _lines(value: str) -> list[str]:
    """Texts, one per line ('-': standard input); a .jsonl's objects give their "text"."""
    try:
        raw = sys.stdin.read() if value == "-" else Path(value).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read {value}: {e}") from None
    lines = [line for line in raw.splitlines() if line.strip()]
    if value.lower().endswith(".jsonl"):
        texts = []
        for n, line in enumerate(lines, start=1):
            try:
                row = json.load(io.StringIO(line))
            except ValueError as e:
                raise UserError(f"{value}:{n}: not a JSON object ({e})") from None
            if not isinstance(row, dict) or "text" not in row:
                raise UserError(f"{value}:{n}: no key 'text'")
            texts.append(str(row["text"]))
        lines = texts
    if not lines:
        raise UserError(f"{value} holds no texts")
    return lines


def _texts(texts: list[str], model, kinds: dict) -> dict:
    """Token ids (unknown tokens as <unk>, as in training), right-padded, and their lengths."""
    vocab = Vocab.from_json(model.metadata[Meta.VOCAB])
    ids, lengths = pad_ids([vocab.encode(t) or [UNK] for t in texts])
    feeds = {}
    for name, kind in kinds.items():
        if kind == "tokens":
            feeds[name] = ids
        elif kind == "lengths":
            feeds[name] = lengths
        else:
            raise UserError(f"text gives token ids and their lengths; input '{name}' is neither")
    return feeds
