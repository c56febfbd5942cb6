"""Data larger than memory and the formats users have: the streaming data stage (images, CSV,
Parquet, saved `datasets` folders) against independent readers of the same files, the
memory-mapped data.npz, separate train/validation/test files, and data.augment."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from specc.compiler import data
from specc.compiler.diagnostics import SpecError
from specc.compiler.pipeline import compile_file
from specc.compiler.train import data as train_data

from .helpers import run_specc

TABLE = """\
specc: 1
name: t
task: classification
inputs: {{x: {{shape: [{n}]}}}}
model: [{{type: linear, out_features: 3}}]
data: {{type: {kind}, {where}, label: kind{extra}}}
"""


def table_rows(n=50, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n).astype(np.float32)
    pair = rng.normal(size=(n, 2)).astype(np.float32)
    kind = np.array(["cat", "dog", "emu"])[rng.integers(0, 3, n)]
    return a, pair, kind


def prepared(spec):
    """The data stage's output, written and read back as train.py reads it."""
    compiled = compile_file(spec)
    ds = data.prepare(compiled)
    out = spec.parent / "out.npz"
    data.save(ds, out)
    return ds, train_data.open_npz(out)


def located(spec, text):
    spec.write_text(text)
    with pytest.raises(SpecError) as e:
        data.gathered(data.prepare(compile_file(spec)))
    (d,) = e.value.diagnostics
    return d


def test_parquet_columns_list_columns_and_a_missing_column(tmp_path):
    pa, pq = pytest.importorskip("pyarrow"), pytest.importorskip("pyarrow.parquet")
    a, pair, kind = table_rows()
    table = pa.table({"id": np.arange(50), "a": a, "pair": list(pair), "kind": kind})
    pq.write_table(table, tmp_path / "d.parquet", row_group_size=7)  # several row groups
    spec = tmp_path / "s.yaml"
    spec.write_text(
        TABLE.format(n=3, kind="parquet", where="path: d.parquet", extra=", exclude: [id]")
    )
    ds, arrays = prepared(spec)
    want = np.concatenate([a[:, None], pair], axis=1)
    assert np.array_equal(arrays["x"], want)  # float32 both: exact
    assert arrays["y"].tolist() == [["cat", "dog", "emu"].index(k) for k in kind]
    assert ds.labels == ["cat", "dog", "emu"] and ds.count == 50 and "split" not in arrays
    d = located(
        spec,
        TABLE.format(n=3, kind="parquet", where="path: d.parquet", extra=", features: [a, pairs]"),
    )
    assert d.pos.line == 6 and "d.parquet has no column 'pairs'" in d.message
    assert d.hint == "did you mean 'pair'?"
    d = located(
        spec, TABLE.format(n=3, kind="parquet", where="path: d.parquet", extra=", features: [zz]")
    )
    assert d.hint == "d.parquet has the columns: id, a, pair, kind"


def test_parquet_nan_is_refused_with_the_count(tmp_path):
    pa, pq = pytest.importorskip("pyarrow"), pytest.importorskip("pyarrow.parquet")
    a, _, kind = table_rows()
    a[[3, 40]] = np.nan
    pq.write_table(pa.table({"a": a, "kind": kind}), tmp_path / "d.parquet", row_group_size=20)
    spec = tmp_path / "s.yaml"
    d = located(spec, TABLE.format(n=1, kind="parquet", where="path: d.parquet", extra=""))
    assert "hold NaN or infinity" in d.message


def test_saved_datasets_folder_with_its_splits_and_class_names(tmp_path):
    datasets = pytest.importorskip("datasets")
    a, pair, kind = table_rows(60)
    names = ["cat", "dog", "emu"]
    features = datasets.Features(
        {
            "a": datasets.Value("float32"),
            "pair": datasets.Sequence(datasets.Value("float32"), length=2),
            "kind": datasets.ClassLabel(names=names),
        }
    )
    codes = [names.index(k) for k in kind]

    def part(s):
        return datasets.Dataset.from_dict(
            {"a": a[s], "pair": pair[s].tolist(), "kind": codes[s]}, features=features
        )

    saved = datasets.DatasetDict(
        {
            "train": part(slice(0, 40)),
            "validation": part(slice(40, 50)),
            "test": part(slice(50, 60)),
        }
    )
    saved.save_to_disk(str(tmp_path / "hf"))
    spec = tmp_path / "s.yaml"
    spec.write_text(TABLE.format(n=3, kind="datasets", where="path: hf", extra=""))
    ds, arrays = prepared(spec)
    assert np.array_equal(arrays["x"], np.concatenate([a[:, None], pair], axis=1))
    assert arrays["y"].tolist() == codes and ds.labels == names
    assert arrays["split"].tolist() == [0] * 40 + [1] * 10 + [2] * 10
    train_data.VAL_SPLIT, train_data.TEST_SPLIT = 0.2, 0.0
    splits = train_data.split_indices(60, 0, arrays["split"])
    assert splits["train"].tolist() == list(range(40)) and splits["val"].tolist() == list(
        range(40, 50)
    )
    assert splits["test"].tolist() == list(range(50, 60))
    # one split's folder as train:, and a missing column named with those that exist
    saved["train"].save_to_disk(str(tmp_path / "hf_train"))
    spec.write_text(TABLE.format(n=3, kind="datasets", where="train: hf_train", extra=""))
    _, arrays = prepared(spec)
    given = arrays["split"]
    assert given.tolist() == [0] * 40
    splits = train_data.split_indices(40, 0, given)  # no validation file: val_split of train
    assert len(splits["val"]) == 8 and not set(splits["val"]) & set(splits["train"])
    d = located(
        spec,
        TABLE.format(n=3, kind="datasets", where="train: hf_train", extra=", label: knd").replace(
            "label: kind, ", ""
        ),
    )
    assert "hf_train has no column 'knd'" in d.message and d.hint == "did you mean 'kind'?"


def test_separate_csv_files_keep_their_splits(tmp_path):
    for name, rows in (("tr", "1,a\n2,b\n3,c\n4,b\n"), ("va", "5,a\n"), ("te", "6,b\n7,a\n")):
        (tmp_path / f"{name}.csv").write_text("v,kind\n" + rows)
    spec = tmp_path / "s.yaml"
    spec.write_text(
        TABLE.format(
            n=1, kind="csv", where="train: tr.csv, validation: va.csv, test: te.csv", extra=""
        )
    )
    ds, arrays = prepared(spec)
    assert arrays["x"].ravel().tolist() == [1, 2, 3, 4, 5, 6, 7]
    assert arrays["split"].tolist() == [0, 0, 0, 0, 1, 2, 2] and ds.labels == ["a", "b", "c"]
    d = located(spec, TABLE.format(n=1, kind="csv", where="path: tr.csv, test: te.csv", extra=""))
    assert "validation and test files go with train:" in d.message


def test_image_folder_streams_in_chunks_equal_to_decoding_each_file(tmp_path, monkeypatch):
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(7):
            Image.fromarray(rng.integers(0, 256, (10, 12), dtype=np.uint8)).save(
                tmp_path / "imgs" / cls / f"{i}.png"
            )
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "specc: 1\nname: t\ntask: classification\ninputs: {x: {shape: [1, 8, 8]}}\n"
        "model: [flatten, {type: linear, out_features: 2}]\n"
        "data: {type: images, path: imgs}\n"
    )
    monkeypatch.setattr(data, "CHUNK_BYTES", 3 * 8 * 8 * 4)  # 3 images a chunk
    compiled = compile_file(spec)
    ds = data.prepare(compiled)
    pieces = []
    chunks = ds.chunks
    ds.chunks = (pieces.append(len(c[0])) or c for c in chunks)
    data.save(ds, tmp_path / "out.npz")
    assert pieces == [3, 3, 3, 3, 2]
    arrays = train_data.open_npz(tmp_path / "out.npz")
    assert isinstance(arrays["x"], np.memmap)  # read from disk as batches need it
    files = sorted((tmp_path / "imgs").glob("*/*.png"))
    want = [
        np.asarray(Image.open(f).convert("L").resize((8, 8), Image.Resampling.BILINEAR), np.float32)
        / 255
        for f in files
    ]
    assert np.array_equal(arrays["x"][:, 0], np.stack(want))
    assert arrays["y"].tolist() == [0] * 7 + [1] * 7
    with np.load(tmp_path / "out.npz") as f:  # still an ordinary .npz
        assert np.array_equal(f["x"], arrays["x"]) and f["labels"].tolist() == ["a", "b"]


def test_encoded_images_in_parquet_and_datasets_decode_as_image_files_do(tmp_path, monkeypatch):
    """PNG bytes in a Parquet binary column, in a saved `datasets` folder's Image feature and in
    the {bytes, path} struct `datasets` writes to Parquet: the same pixels, bitwise, as decoding
    the same PNG files with PIL here; read a few rows at a time; model.onnx is told how (the
    image steps), and a damaged image is named by its row."""
    import io

    datasets = pytest.importorskip("datasets")
    pa, pq = pytest.importorskip("pyarrow"), pytest.importorskip("pyarrow.parquet")
    from PIL import Image

    rng = np.random.default_rng(1)
    pictures = [
        Image.fromarray(rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)) for _ in range(9)
    ]
    encoded = []
    for p in pictures:
        buffer = io.BytesIO()
        p.save(buffer, format="PNG")
        encoded.append(buffer.getvalue())
    kind = ["cat", "dog", "emu"] * 3
    want = np.stack(
        [
            np.asarray(
                Image.open(io.BytesIO(b)).convert("L").resize((8, 8), Image.Resampling.BILINEAR),
                np.float32,
            )
            / 255
            for b in encoded
        ]
    )
    pq.write_table(pa.table({"png": encoded, "kind": kind}), tmp_path / "binary.parquet")
    features = datasets.Features({"png": datasets.Image(), "kind": datasets.Value("string")})
    saved = datasets.Dataset.from_dict({"png": pictures, "kind": kind}, features=features)
    saved.save_to_disk(str(tmp_path / "hf"))
    saved.to_parquet(str(tmp_path / "struct.parquet"))
    spec = tmp_path / "s.yaml"
    body = (
        "specc: 1\nname: t\ntask: classification\ninputs: {x: {shape: [1, 8, 8]}}\n"
        "model: [flatten, {type: linear, out_features: 3}]\n"
        "data: {type: KIND, path: PATH, label: kind}\n"
    )
    monkeypatch.setattr(data, "CHUNK_BYTES", 4 * 8 * 8 * 4)  # 4 rows a batch
    for kind_, path in (
        ("parquet", "binary.parquet"),
        ("datasets", "hf"),
        ("parquet", "struct.parquet"),
    ):
        spec.write_text(body.replace("KIND", kind_).replace("PATH", path))
        ds, arrays = prepared(spec)
        assert np.array_equal(arrays["x"][:, 0], want), path
        assert arrays["y"].tolist() == [0, 1, 2] * 3
        assert ds.preprocess["source"] == "images" and ds.preprocess["columns"] == ["png"]
        assert [s["op"] for s in ds.preprocess["steps"]] == ["color", "resize", "scale", "layout"]

    encoded[5] = b"not a png"
    pq.write_table(pa.table({"png": encoded, "kind": kind}), tmp_path / "binary.parquet")
    d = located(spec, body.replace("KIND", "parquet").replace("PATH", "binary.parquet"))
    assert "binary.parquet: row 6, column 'png'" in d.message and "cannot read" in d.message
    d = located(
        spec,
        body.replace("KIND", "parquet")
        .replace("PATH", "binary.parquet")
        .replace("[1, 8, 8]", "[64]"),
    )
    assert "column 'png' holds images, but the input is (64,)" in d.message


def test_rows_read_only_what_a_batch_asks_for(tmp_path):
    x = np.arange(60, dtype=np.float32).reshape(20, 3)
    np.savez(tmp_path / "d.npz", x=x, y=np.zeros(20))
    mapped = train_data.open_npz(tmp_path / "d.npz")["x"]
    rows = train_data.Rows(mapped, np.array([2, 5, 7, 11]), np.float32)
    assert rows[torch.tensor([3, 0])].tolist() == [x[11].tolist(), x[2].tolist()]
    assert rows[1:3].tolist() == x[[5, 7]].tolist() and rows.shape == (4, 3)
    mean, std = rows.mean_std(chunk=3)
    oracle = torch.from_numpy(x[[2, 5, 7, 11]])
    assert torch.allclose(mean, oracle.mean(0)) and torch.allclose(std, oracle.std(0))


def test_large_inputs_stay_on_disk_and_give_the_same_batches(tmp_path, monkeypatch):
    x = np.random.default_rng(0).normal(size=(50, 2, 3)).astype(np.float32)
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(50))
    monkeypatch.setattr(
        train_data, "DATA_INPUTS", {"x": {"dims": ["batch", 2, 3], "dtype": "float32"}}
    )
    xs, y = train_data.load_data(tmp_path / "d.npz")
    splits = {"train": np.array([0, 3, 4, 5, 9, 30]), "val": np.arange(10, 20)}
    loaded = train_data.splits_of(xs, y, splits)
    monkeypatch.setattr(train_data, "LOAD_BYTES", 0)
    on_disk = train_data.splits_of(xs, y, splits)
    assert isinstance(on_disk["train"][0][0].array, np.memmap)
    assert not isinstance(loaded["train"][0][0].array, np.memmap)
    batch = torch.tensor([5, 0, 2, 3])  # positions in the split: rows 30, 0, 4, 5
    assert torch.equal(on_disk["train"][0][0][batch], loaded["train"][0][0][batch])
    assert torch.equal(on_disk["train"][0][0][batch], torch.from_numpy(x[[30, 0, 4, 5]]))
    assert torch.equal(on_disk["val"][0][0][2:7], torch.from_numpy(x[12:17]))


def test_augment_is_seeded_and_each_option_does_what_it_says():
    x = torch.rand(16, 3, 9, 9)
    none = {"crop": 0, "flip": False, "rotate": 0.0, "color_jitter": 0.0}
    flip = train_data.augment(x, torch.Generator().manual_seed(1), none | {"flip": True})
    flipped = [bool(torch.equal(f, o.flip(-1))) for f, o in zip(flip, x)]
    assert (
        all(torch.equal(f, o) or m for f, o, m in zip(flip, x, flipped)) and 0 < sum(flipped) < 16
    )
    crop = train_data.augment(x, torch.Generator().manual_seed(1), none | {"crop": 2})
    # each crop is the image shifted by at most 2 pixels: its centre appears in the original
    for c, o in zip(crop, x):
        centre = c[:, 2:7, 2:7]
        assert any(
            torch.equal(centre, o[:, dy : dy + 5, dx : dx + 5])
            for dy in range(5)
            for dx in range(5)
        )
    full = none | {"crop": 2, "flip": True, "rotate": 10.0, "color_jitter": 0.2}
    one = train_data.augment(x, train_data.augment_generator(0, 3, 5, 0), full)
    again = train_data.augment(x, train_data.augment_generator(0, 3, 5, 0), full)
    other = train_data.augment(x, train_data.augment_generator(0, 4, 5, 0), full)
    assert torch.equal(one, again) and not torch.equal(one, other)
    rotated = train_data.augment(x, torch.Generator().manual_seed(0), none | {"rotate": 0.001})
    assert torch.allclose(rotated, x, atol=1e-3)  # a tiny angle is (nearly) the identity


@pytest.mark.slow
def test_specc_trains_on_parquet_with_augmented_images_and_draws_them(tmp_path):
    """End to end: image pixels from separate Parquet train/validation files, augmented in
    train.py (its picture written by specc), validated on unaugmented examples."""
    pa, pq = pytest.importorskip("pyarrow"), pytest.importorskip("pyarrow.parquet")
    rng = np.random.default_rng(0)

    def stripes(n):
        y = rng.integers(0, 2, n)
        img = np.zeros((n, 8, 8), np.float32)
        img[y == 0, :, 2:4] = 1  # vertical stripe
        img[y == 1, 2:4, :] = 1  # horizontal stripe
        return pa.table({"pixels": list(img.reshape(n, 64)), "kind": np.where(y == 0, "v", "h")})

    pq.write_table(stripes(96), tmp_path / "train.parquet")
    pq.write_table(stripes(32), tmp_path / "val.parquet")
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "specc: 1\nname: stripes\ntask: classification\ninputs: {x: {shape: [1, 8, 8]}}\n"
        "model: [flatten, {type: linear, out_features: 2}]\n"
        "data: {type: parquet, train: train.parquet, validation: val.parquet, label: kind,\n"
        "       augment: {flip: true, crop: 1}}\n"
        "train: {epochs: 8, batch_size: 16, optimizer: {type: adam, lr: 0.05}}\n"
    )
    proc = run_specc("train", spec, "-o", tmp_path / "run", "--quiet")
    assert proc.returncode == 0, proc.stderr
    run = tmp_path / "run"
    from PIL import Image

    with Image.open(run / "augmented_examples.png") as picture:
        assert picture.size[1] > picture.size[0] / 4  # five rows of eight tiles
    splits = np.load(run / "splits.npz")
    assert splits["train"].tolist() == list(range(96)) and splits["val"].tolist() == list(
        range(96, 128)
    )
    results = json.loads((run / "results.json").read_text())
    assert results["metrics"]["val_accuracy"] >= 0.9  # flips and 1-pixel shifts keep the stripes
    # evaluate reads the Parquet file itself (streamed), as the data stage read it into the split
    scored = []
    for source in ("val", tmp_path / "val.parquet"):
        proc = run_specc("evaluate", run, "--data", source, "--json")
        assert proc.returncode == 0, proc.stderr
        scored.append(json.loads(proc.stdout))
    assert scored[1]["examples"] == 32
    assert scored[1]["confusion_matrix"] == scored[0]["confusion_matrix"]
    assert scored[1]["metrics"]["loss"] == pytest.approx(scored[0]["metrics"]["loss"], abs=1e-7)


def test_augment_needs_an_image_input(tmp_path):
    (tmp_path / "d.csv").write_text("v,kind\n1,a\n2,b\n")
    spec = tmp_path / "s.yaml"
    d = located(
        spec, TABLE.format(n=1, kind="csv", where="path: d.csv", extra=", augment: {flip: true}")
    )
    assert "augment: changes images" in d.message and d.pos.line == 6
