"""End to end on the example specs: train on built-in data, export, parity, serve through specc.runtime."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch
from helpers import SPECS, run_specc

import specc.runtime as sr

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Each example spec trained once for this module (in CI's budget)."""
    runs = {}

    def get(name: str):
        if name not in runs:
            out = tmp_path_factory.mktemp(name.split(".")[0])
            proc = run_specc("train", SPECS / name, "-o", out, "--quiet")
            assert proc.returncode == 0, proc.stderr + proc.stdout
            runs[name] = out
        return runs[name]

    return get


@pytest.mark.parametrize(
    "spec,minimum",
    [
        ("xor.yaml", 1.0),
        ("lenet5.yaml", 0.95),
        ("mlp_digits.toml", 0.95),
        ("resnet_tiny.yaml", 0.95),
    ],
)
def test_example_trains_to_its_stated_accuracy_and_serves_identically(trained, spec, minimum):
    out = trained(spec)
    report = json.loads((out / "report.json").read_text())
    assert report["metrics"]["val_accuracy"] >= minimum
    assert report["parity"]["ok"] and report["parity"]["max_abs_diff"] <= 1e-4
    assert {r["batch"] for r in report["parity"]["runs"]} >= {1, 64}
    # the ONNX model, run by the runtime on the held-out split, gets the same accuracy as PyTorch
    model = sr.load(out)
    data, val = np.load(out / "data.npz"), np.load(out / "splits.npz")["val"]
    pred = model.predict(data["x"][val])
    assert np.mean(pred.classes == data["y"][val]) == pytest.approx(
        report["metrics"]["val_accuracy"], abs=1e-9
    )


def test_xor_learns_all_four_points(trained):
    model = sr.load(trained("xor.yaml"))
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    assert model.predict(x).classes.tolist() == [0, 1, 1, 0]


def test_onnx_file_is_single_checked_dynamic_and_stamped(trained):
    out = trained("lenet5.yaml")
    path = out / "model.onnx"
    onnx.checker.check_model(str(path), full_check=True)
    proto = onnx.load(str(path))
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in proto.graph.initializer)
    (inp,), (outp,) = proto.graph.input, proto.graph.output
    assert inp.name == "image" and outp.name == "logits"
    assert [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim] == [
        "batch",
        1,
        28,
        28,
    ]
    assert [d.dim_param or d.dim_value for d in outp.type.tensor_type.shape.dim] == ["batch", 10]
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["specc.task"] == "classification"
    assert meta["specc.spec_sha256"] == json.loads((out / "report.json").read_text())["spec_sha256"]
    assert json.loads(meta["specc.labels"]) == [str(i) for i in range(10)]
    assert json.loads(meta["specc.inputs"])[0]["dims"] == ["batch", 1, 28, 28]


def test_generated_model_equals_handwritten_lenet5(trained):
    """Oracle: the LeNet-5 of the course, written by hand in PyTorch, with the trained weights."""
    out = trained("lenet5.yaml")
    hand = torch.nn.Sequential(
        torch.nn.Conv2d(1, 20, 5, padding=2),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2, 2),
        torch.nn.Conv2d(20, 50, 5, padding=2),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2, 2),
        torch.nn.Flatten(),
        torch.nn.Linear(2450, 500),
        torch.nn.ReLU(),
        torch.nn.Linear(500, 10),
    ).eval()
    assert sum(p.numel() for p in hand.parameters()) == 1_256_080
    state = torch.load(out / "checkpoints" / "last.pt", weights_only=True)["model"]
    hand.load_state_dict(dict(zip(hand.state_dict().keys(), state.values(), strict=True)))
    x = torch.from_numpy(np.load(out / "data.npz")["x"][:32])
    got = sr.load(out).run(image=x.numpy())["logits"]
    np.testing.assert_allclose(got, hand(x).detach().numpy(), atol=1e-4)


def test_predict_cli(trained, tmp_path):
    out = trained("lenet5.yaml")
    x = np.load(out / "data.npz")["x"][:3]
    np.save(tmp_path / "x.npy", x)
    proc = run_specc("predict", out / "model.onnx", "--input", tmp_path / "x.npy", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert [r["class"] for r in rows] == sr.load(out).predict(x).classes.tolist()
    bad = tmp_path / "bad.npy"
    np.save(bad, x[:, 0])
    proc = run_specc("predict", out, "--input", bad)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "input 'image': expected shape (batch, 1, 28, 28), got (3, 28, 28)" in proc.stderr


def test_runtime_input_errors_are_one_clear_message(trained):
    model = sr.load(trained("xor.yaml"))
    with pytest.raises(
        sr.InputError,
        match=r"unknown input 'image'; missing input 'x'; the model takes x: float32 \(batch, 2\)",
    ):
        model.run(image=np.zeros((1, 2), np.float32))
    with pytest.raises(sr.InputError, match=r"input 'x' must be an array of numbers, got <U1"):
        model.run(x=np.array([["a", "b"]]))
    with pytest.raises(
        sr.InputError, match=r"expected shape \(batch, 2\), got \(2,\); add a batch dimension"
    ):
        model.run(x=np.zeros(2, np.float32))
    assert model.run(x=np.zeros((3, 2)))["probability"].shape == (
        3,
        1,
    )  # float64 is cast, not refused


def test_cuda_request_without_cuda_provider_is_an_error(trained):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("a CUDA provider is present; this test covers the CPU-only install")
    with pytest.raises(sr.DeviceError, match="no CUDA provider"):
        sr.load(trained("xor.yaml"), device="cuda")
    assert sr.load(trained("xor.yaml"), device="auto").device == "cpu"


def test_corrupt_and_missing_models_are_clear_errors(tmp_path):
    with pytest.raises(sr.ModelLoadError, match="expected model.onnx in that folder"):
        sr.load(tmp_path)
    bad = tmp_path / "m.onnx"
    bad.write_bytes(b"not a model at all")
    with pytest.raises(sr.ModelLoadError, match="cannot load"):
        sr.load(bad)
    proc = run_specc("predict", bad, "--input", bad)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr


def test_csv_and_npz_data(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3)).astype(np.float32)
    y = (x[:, 0] + 2 * x[:, 1] > 0).astype(int)
    rows = ["a,b,c,kind"] + [
        f"{a},{b},{c},{'yes' if t else 'no'}" for (a, b, c), t in zip(x, y, strict=True)
    ]
    (tmp_path / "d.csv").write_text("\n".join(rows) + "\n")
    np.savez(tmp_path / "d.npz", inputs=x, targets=x @ np.array([1.0, -2.0, 0.5], dtype=np.float32))
    head = "specc: 1\ninputs: {x: {shape: [3]}}\nmodel: [{type: linear, out_features: 16}, relu, {type: linear, out_features: %d}]\n"
    (tmp_path / "c.yaml").write_text(
        "name: c\ntask: classification\n"
        + head % 2
        + "data: {type: csv, path: d.csv, label: kind, standardize: true}\ntrain: {epochs: 30, target: {metric: val_accuracy, min: 0.9}}\n"
    )
    (tmp_path / "r.yaml").write_text(
        "name: r\ntask: regression\n"
        + head % 1
        + "data: {type: npz, path: d.npz, x: inputs, y: targets}\ntrain: {epochs: 40, optimizer: {type: adam, lr: 0.01}}\n"
    )
    proc = run_specc("train", tmp_path / "c.yaml", "-o", tmp_path / "c", "--quiet")
    assert proc.returncode == 0, proc.stderr
    model = sr.load(tmp_path / "c")
    assert model.labels == ["no", "yes"]
    assert np.mean(model.predict(x).classes == y) > 0.9
    proc = run_specc("train", tmp_path / "r.yaml", "-o", tmp_path / "r", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "r" / "report.json").read_text())["metrics"]["val_loss"] < 0.05


def test_data_problems_are_located_before_training(write_spec):
    base = "specc: 1\nname: t\ntask: classification\ninputs: {x: {shape: [3]}}\nmodel: [{type: linear, out_features: 2}]\n"
    cases = {
        "data: {type: csv, path: nowhere.csv, label: y}\n": "data file not found",
        "data: {type: builtin, name: digits}\n": "the data's examples have shape (1, 8, 8), but input 'x' is (3,)",
    }
    for data, message in cases.items():
        proc = run_specc(
            "train", write_spec(base + data), "-o", write_spec("", "unused").parent / "o"
        )
        assert proc.returncode == 1 and "Traceback" not in proc.stderr
        assert ":6:" in proc.stderr and message in proc.stderr, proc.stderr


def test_evaluate_scores_the_onnx_model_like_the_report(trained):
    out = trained("lenet5.yaml")
    report = json.loads((out / "report.json").read_text())
    proc = run_specc("evaluate", out, "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    test_idx = np.load(out / "splits.npz")["test"]
    assert result["data"].startswith("test split") and result["examples"] == len(test_idx) > 0
    assert result["metrics"]["accuracy"] == pytest.approx(
        report["metrics"]["test_accuracy"], abs=1e-9
    )
    assert result["metrics"]["loss"] == pytest.approx(report["metrics"]["test_loss"], abs=1e-4)
    matrix = np.array(result["confusion_matrix"])
    counts = np.bincount(np.load(out / "data.npz")["y"][test_idx], minlength=10)
    assert matrix.sum(axis=1).tolist() == counts.tolist()
    assert report["best_epoch"] >= 1 and report["train_samples_per_s"] > 0
    assert (out / "metrics.png").stat().st_size > 10_000


def test_int8_export_keeps_accuracy_and_shrinks_the_model(trained):
    out = trained("lenet5.yaml")
    proc = run_specc("export", out, "--quantize", "int8")
    assert proc.returncode == 0, proc.stderr
    figures = json.loads((out / "quantization.json").read_text())
    assert figures["accepted"] and figures["accuracy_drop_points"] <= 0.5
    assert figures["bytes"]["int8"] * 3 < figures["bytes"]["float"]
    int8, fp = sr.load(out / "model.int8.onnx"), sr.load(out)
    assert int8.metadata["specc.quantized"] == "int8" and int8.labels == fp.labels
    x = np.load(out / "data.npz")["x"][np.load(out / "splits.npz")["val"]]
    agree = np.mean(int8.predict(x).classes == fp.predict(x).classes)
    assert agree >= 0.99
    assert figures["int8"]["accuracy"] == pytest.approx(
        np.mean(
            int8.predict(x).classes
            == np.load(out / "data.npz")["y"][np.load(out / "splits.npz")["val"]]
        )
    )
