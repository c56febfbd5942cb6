"""Data sources (image folders, CSV columns, generated road images) and `specc evaluate` through
ONNX Runtime: located errors before training, and scores that agree with the training report."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import SPECS, run_specc
from PIL import Image

from specc.compiler import data
from specc.compiler.datasets.road import COLS, generate
from specc.compiler.diagnostics import SpecError
from specc.compiler.pipeline import compile_file

IMAGES = """\
specc: 1
name: stripes
task: classification
inputs: {{image: {{shape: [{channels}, 12, 12]}}}}
model:
  - {{type: conv2d, out_channels: 4, kernel_size: 3}}
  - relu
  - flatten
  - {{type: linear, out_features: 2}}
data: {{type: images, path: {path}, color: {color}, val_split: 0.25}}
train: {{epochs: 12, batch_size: 16, optimizer: {{type: adam, lr: 0.01}}}}
"""


def stripes(folder, per_class=40, size=16, seed=0):
    """Horizontal vs vertical stripes with random phase and noise, saved as PNG files."""
    rng = np.random.default_rng(seed)
    for label in ("horizontal", "vertical"):
        (folder / label).mkdir(parents=True)
        for i in range(per_class):
            wave = (np.sin(np.arange(size) * 1.3 + rng.uniform(0, 6)) > 0) * 180.0
            img = np.tile(
                wave[:, None] if label == "horizontal" else wave[None, :],
                (1, size) if label == "horizontal" else (size, 1),
            )
            img = np.clip(img + rng.normal(0, 25, (size, size)) + 30, 0, 255).astype(np.uint8)
            Image.fromarray(img, mode="L").save(folder / label / f"{i:03d}.png")


def located(path, text):
    path.write_text(text)
    with pytest.raises(SpecError) as e:
        data.gathered(data.prepare(compile_file(path)))
    (d,) = e.value.diagnostics
    return d


@pytest.mark.slow
def test_image_folder_trains_and_evaluates_through_onnx_runtime(tmp_path):
    stripes(tmp_path / "imgs")
    spec = tmp_path / "stripes.yaml"
    spec.write_text(IMAGES.format(channels=1, path="imgs", color="gray"))
    proc = run_specc("train", spec, "-o", tmp_path / "run", "--quiet")
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["metrics"]["val_accuracy"] >= 0.95

    proc = run_specc("evaluate", tmp_path / "run", "--data", tmp_path / "imgs", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["examples"] == 80 and result["labels"] == ["horizontal", "vertical"]
    matrix = np.array(result["confusion_matrix"])
    assert matrix.sum(axis=1).tolist() == [40, 40]
    assert result["metrics"]["accuracy"] == pytest.approx(np.trace(matrix) / 80)
    assert result["metrics"]["accuracy"] >= 0.95

    proc = run_specc("evaluate", tmp_path / "run", "--data", "val", "--json")
    val = json.loads(proc.stdout)["metrics"]
    assert val["accuracy"] == pytest.approx(report["metrics"]["val_accuracy"], abs=1e-9)
    assert val["loss"] == pytest.approx(report["metrics"]["val_loss"], abs=1e-4)
    plain = run_specc("evaluate", tmp_path / "run", "--data", "val")
    assert "confusion matrix (rows: true, columns: predicted)" in plain.stdout
    assert "horizon" in plain.stdout

    streamed_evaluate_and_predict(tmp_path / "run", tmp_path / "imgs", result)

    proc = run_specc("evaluate", tmp_path / "run", "--data", "test")
    assert proc.returncode == 1 and "no test split" in proc.stderr
    proc = run_specc("evaluate", tmp_path / "run", "--data", tmp_path / "x.csv")
    assert proc.returncode == 1 and "a .csv needs a model trained on CSV data" in proc.stderr
    proc = run_specc("evaluate", tmp_path, "--data", "val")
    assert proc.returncode == 1 and "not a folder written by `specc train`" in proc.stderr


def streamed_evaluate_and_predict(run, folder, whole):
    """`specc evaluate` and `predict` on a folder decoded 7 images at a time: the model sees
    pieces of at most 7 examples, and the scores, the confusion matrix and the predictions are
    those of ONNX Runtime run on all 80 pictures at once, decoded here by the data stage's rule
    (PIL gray, PIL bilinear to 12x12, / 255), scored by hand."""
    import onnxruntime as ort
    from typer.testing import CliRunner

    import specc.runtime as sr
    from specc.compiler import evaluate
    from specc.compiler.cli import app

    files = sorted(folder.glob("*/*.png"))
    x = np.stack(
        [
            np.asarray(Image.open(f).convert("L").resize((12, 12), Image.Resampling.BILINEAR))[None]
            / np.float32(255)
            for f in files
        ]
    ).astype(np.float32)
    y = np.array([f.parent.name == "vertical" for f in files], dtype=np.int64)
    session = ort.InferenceSession(str(run / "model.onnx"), providers=["CPUExecutionProvider"])
    logits = session.run(None, {session.get_inputs()[0].name: x})[0].astype(np.float64)
    log_z = np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1)) + logits.max(1)
    matrix = np.zeros((2, 2), dtype=np.int64)
    np.add.at(matrix, (y, logits.argmax(1)), 1)

    seen = []
    run_batched = sr.Model.run_batched

    def counted(self, feeds, batch_size):
        seen.append(len(next(iter(feeds.values()))))
        return run_batched(self, feeds, batch_size)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(data, "CHUNK_BYTES", 7 * 12 * 12 * 4)
        patch.setattr(sr.Model, "run_batched", counted)
        result = evaluate.evaluate(run, str(folder), device="cpu")
        assert seen == [7] * 11 + [3]
        assert result["confusion_matrix"] == matrix.tolist() == whole["confusion_matrix"]
        metrics = result["metrics"]
        assert metrics["accuracy"] == pytest.approx(np.mean(logits.argmax(1) == y), abs=1e-12)
        nll = log_z - logits[np.arange(len(y)), y]
        assert metrics["loss"] == pytest.approx(nll.mean(), rel=1e-5)
        assert metrics["loss"] == pytest.approx(whole["metrics"]["loss"], rel=1e-6)

        seen.clear()
        printed = CliRunner().invoke(app, ["predict", str(run), "-i", str(folder), "--json"])
        assert printed.exit_code == 0, printed.output
        assert seen == [7] * 11 + [3]
    rows = json.loads(printed.stdout)
    assert [r["index"] for r in rows] == list(range(80))
    assert [r["input"] for r in rows] == [str(f.relative_to(folder)) for f in files]
    predicted = ["horizontal", "vertical"]
    assert [r["label"] for r in rows] == [predicted[k] for k in logits.argmax(1)]


def test_image_folder_problems_are_located(tmp_path):
    spec = tmp_path / "s.yaml"
    d = located(spec, IMAGES.format(channels=1, path="nowhere", color="gray"))
    assert "image folder not found" in d.message and d.pos.line == 10
    (tmp_path / "empty").mkdir()
    assert (
        "has no class sub-folders"
        in located(spec, IMAGES.format(channels=1, path="empty", color="gray")).message
    )
    (tmp_path / "some" / "cats").mkdir(parents=True)
    assert (
        "holds no images"
        in located(spec, IMAGES.format(channels=1, path="some", color="gray")).message
    )
    (tmp_path / "some" / "cats" / "broken.png").write_bytes(b"not a png at all")
    d = located(spec, IMAGES.format(channels=1, path="some", color="gray"))
    assert "cannot read image" in d.message and "broken.png" in d.message
    d = located(spec, IMAGES.format(channels=1, path="some", color="rgb"))
    assert "rgb images have 3 channel(s); the input is (1, 12, 12)" in d.message


CSV = """\
specc: 1
name: c
task: classification
inputs: {{x: {{shape: [{n}]}}}}
model: [{{type: linear, out_features: 2}}]
data: {{type: csv, path: d.csv, label: kind{extra}}}
"""


def test_csv_column_selection_and_its_errors(tmp_path):
    (tmp_path / "d.csv").write_text("id,a,b,kind\n1,0.5,1.5,yes\n2,-1,2,no\n3,0,0,yes\n")
    spec = tmp_path / "s.yaml"
    spec.write_text(CSV.format(n=2, extra=", exclude: [id]"))
    ds = data.gathered(data.prepare(compile_file(spec)))
    assert ds.x.tolist() == [[0.5, 1.5], [-1, 2], [0, 0]] and ds.y.tolist() == [1, 0, 1]
    spec.write_text(CSV.format(n=1, extra=", features: [b]"))
    assert data.gathered(data.prepare(compile_file(spec))).x.ravel().tolist() == [1.5, 2, 0]
    d = located(spec, CSV.format(n=1, extra=", features: [bb]"))
    assert "has no column 'bb'" in d.message and d.hint == "did you mean 'b'?"
    d = located(spec, CSV.format(n=2, extra=", exclude: [idd]"))
    assert "has no column 'idd'" in d.message
    d = located(spec, CSV.format(n=2, extra=", features: [a, kind]"))
    assert "the label column 'kind' is also a feature" in d.message
    d = located(spec, CSV.format(n=2, extra=""))  # id, a, b: three features for two inputs
    assert "the data's examples have shape (3,), but input 'x' is (2,)" in d.message
    (tmp_path / "d.csv").write_text("a,b,kind\n1,2,yes\n3,4\n")
    d = located(spec, CSV.format(n=2, extra=""))
    assert "d.csv:3: 2 values, the header has 3" in d.message


def test_non_finite_values_and_target_shapes_are_refused(tmp_path):
    x = np.ones((10, 3), dtype=np.float32)
    x[4, 1] = np.nan
    np.savez(tmp_path / "d.npz", x=x, y=np.zeros(10, dtype=np.int64))
    spec = tmp_path / "s.yaml"
    body = "specc: 1\nname: n\ntask: {task}\ninputs: {{x: {{shape: [3]}}}}\nmodel: [{{type: linear, out_features: 2}}]\ndata: {{type: npz, path: d.npz}}\n"
    d = located(spec, body.format(task="classification"))
    assert "the inputs of 1 example(s) hold NaN or infinity" in d.message and d.pos.line == 6
    np.savez(tmp_path / "d.npz", x=np.ones((10, 3), np.float32), y=np.ones((10, 3), np.float32))
    d = located(spec, body.format(task="regression"))
    assert "targets have shape (3,), but the model outputs (2,)" in d.message


def test_road_images_show_where_to_steer():
    """Independent of the renderer's formula: the bright road at the look-ahead rows lies on the
    side the target says to steer to, and more so the larger the target."""
    x, y = generate(400, seed=3)
    assert x.shape == (400, 1, 30, 32) and y.shape == (400, 1)
    assert -1 <= y.min() < -0.3 and 0.3 < y.max() <= 1
    rows = x[:, 0, 9:14, :]  # around 60% of the way to the horizon
    weights = np.clip(rows - rows.mean(axis=2, keepdims=True), 0, None)
    centre = (weights * np.arange(COLS)).sum(axis=(1, 2)) / weights.sum(axis=(1, 2))
    assert np.corrcoef(centre, y[:, 0])[0, 1] > 0.95
    x2, y2 = generate(400, seed=3)
    assert np.array_equal(x, x2) and np.array_equal(y, y2)
    assert not np.array_equal(generate(5, seed=4)[1], y[:5])


@pytest.mark.slow
def test_alvinn_learns_to_steer_and_onnx_runtime_agrees(tmp_path):
    out = tmp_path / "alvinn"
    proc = run_specc("train", SPECS / "alvinn.yaml", "-o", out, "--quiet")
    assert proc.returncode == 0, proc.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["metrics"]["test_mae"] <= 0.02  # the spec's own target, checked again here
    y = np.load(out / "data.npz")["y"][np.load(out / "splits.npz")["test"]]
    assert (
        report["metrics"]["test_mae"] < np.abs(y - y.mean()).mean() / 10
    )  # far better than a constant
    proc = run_specc("evaluate", out, "--json")
    result = json.loads(proc.stdout)
    assert result["data"].startswith("test split")
    assert result["metrics"]["mae"] == pytest.approx(report["metrics"]["test_mae"], abs=1e-5)
    assert "confusion_matrix" not in result
