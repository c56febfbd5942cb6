"""`specc export --quantize int8`: the static QDQ form, the accuracy guard per task, and the choice
between static and dynamic int8 by measured speed. Timings are never asserted: the decision is
tested with measured times injected (`quantize(timer=...)`)."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch
from helpers import SPECS, run_specc
from onnx import numpy_helper

import specc.runtime as sr
from specc.compiler import codegen
from specc.compiler import export as ex
from specc.compiler.diagnostics import UserError
from specc.compiler.pipeline import compile_file
from specc.compiler.quantize import calibration_sample, choose, judge, quantize, static_int8
from specc.runtime.contracts import Meta

SPEC = """\
specc: 1
name: fragile
task: classification
inputs: {x: {shape: [9]}}
model:
  - {type: linear, out_features: 4}
"""

CNN = """\
specc: 1
name: small_cnn
task: classification
inputs: {image: {shape: [1, 12, 12]}}
model:
  - {type: conv2d, out_channels: 6, kernel_size: 3, padding: 1}
  - relu
  - {type: maxpool2d, kernel_size: 2}
  - {type: conv2d, out_channels: 8, kernel_size: 3, padding: 1}
  - relu
  - flatten
  - {type: linear, out_features: 16}
  - relu
  - {type: linear, out_features: 3}
"""


def _run(tmp_path, spec: str, x, y, weights=None, n_train: int | None = None):
    """A run folder of `spec` (fresh seeded weights, or `weights(model)`), data and splits."""
    (tmp_path / "s.yaml").write_text(spec)
    compiled = compile_file(tmp_path / "s.yaml")
    run = tmp_path / "run"
    codegen.write(compiled, run)
    torch.manual_seed(0)
    model = ex.instantiate(run)
    if weights:
        with torch.no_grad():
            weights(model)
    ex.export(model, compiled.ir, run / "model.onnx")
    np.savez(run / "data.npz", x=x, y=y)
    n = n_train or len(x) * 3 // 4
    np.savez(run / "splits.npz", train=np.arange(n), val=np.arange(n, len(x)), test=np.arange(0))
    return run, model


def _times(float_ms, **int8_ms):
    """Injected measurements: {kind: {batch: ms}} for batch 1 and 64."""
    return lambda graphs, feeds: (
        {"float": dict(zip((1, 64), float_ms, strict=True))}
        | {k: dict(zip((1, 64), v, strict=True)) for k, v in int8_ms.items() if k in graphs}
    )


def _fragile(tmp_path):
    """Weights of size ~0.01 share a layer with one weight of 100 on an input that is always 0:
    int8 weights (per tensor or per output row) round every small weight to zero."""
    rng = np.random.default_rng(0)
    w = rng.normal(scale=0.01, size=(4, 8)).astype(np.float32)
    x = np.concatenate([rng.normal(size=(400, 8)), np.zeros((400, 1))], axis=1).astype(np.float32)
    y = (x[:, :8] @ w.T).argmax(axis=1)

    def weights(model):
        big = np.concatenate([w, np.full((4, 1), 100.0, np.float32)], axis=1)
        model.linear_1.weight.copy_(torch.from_numpy(big))
        model.linear_1.bias.zero_()

    return _run(tmp_path, SPEC, x, y, weights, n_train=300)[0]


def test_a_model_that_int8_breaks_is_refused(tmp_path):
    run = _fragile(tmp_path)
    proc = run_specc("export", run, "--quantize", "int8")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "int8 model refused: static: validation accuracy 1.0000 ->" in proc.stderr
    assert "; dynamic: validation accuracy 1.0000 ->" in proc.stderr
    assert not (run / "model.int8.onnx").exists() and not (run / "quantization.json").exists()

    # --allow-slower too: whether int8 beats float on a 9x4 layer is the machine's business
    proc = run_specc("export", run, "--quantize", "int8", "--allow-drop", "--allow-slower")
    assert proc.returncode == 0 and "warning: keeping the int8 model although" in proc.stdout
    figures = json.loads((run / "quantization.json").read_text())
    assert not figures["accepted"] and figures["accuracy_drop_points"] > 20
    proc = run_specc("export", run, "--quantize", "int8", "--help")
    assert "--allow-slower" in proc.stdout
    proc = run_specc("export", run, "--quantize", "int4")
    assert proc.returncode == 1 and "unknown --quantize 'int4'" in proc.stderr


def test_static_int8_puts_qdq_around_convolutions_and_matmuls_with_per_channel_weights(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.random((200, 1, 12, 12)).astype(np.float32)
    run, model = _run(tmp_path, CNN, x, rng.integers(0, 3, 200))
    feeds = calibration_sample({"image": x}, n=128)
    assert len(feeds["image"]) == 128
    target = tmp_path / "static.onnx"
    static_int8(
        run / "model.onnx", target, [{"image": feeds["image"][i : i + 64]} for i in (0, 64)]
    )
    graph = onnx.load(str(target)).graph
    producer = {o: n for n in graph.node for o in n.output}
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    compute = [n for n in graph.node if n.op_type in ("Conv", "Gemm", "MatMul")]
    assert sorted(n.op_type for n in compute).count("Conv") == 2 and len(compute) == 4
    for node in compute:
        activation, weight = (producer.get(i) for i in node.input[:2])
        assert activation.op_type == "DequantizeLinear"
        assert (
            producer[activation.input[0]].op_type == "QuantizeLinear"
        )  # calibrated, not int8 data
        assert weight.op_type == "DequantizeLinear" and weight.input[0] in inits
        w, scale = inits[weight.input[0]], inits[weight.input[1]]
        axis = next((a.i for a in weight.attribute if a.name == "axis"), 1)
        assert w.dtype == np.int8 and scale.shape == (w.shape[axis],), node.name  # per channel
        out_channels = {"Conv": (6, 8)}.get(node.op_type, (16, 3))
        assert w.shape[axis] in out_channels and (node.op_type != "Conv" or axis == 0)
    # the int8 graph computes what the float model does, to int8's precision
    with torch.no_grad():
        want = model(torch.from_numpy(x[:64])).numpy()
    got = sr.load(target, device="cpu", cache=False)(x[:64])
    assert np.max(np.abs(got - want)) < 0.05 * np.max(np.abs(want))
    assert np.mean(got.argmax(1) == want.argmax(1)) >= 0.9


def test_choose_takes_the_fastest_accepted_form_that_is_not_slower():
    times = {
        "float": {1: 1.0, 64: 10.0},
        "static": {1: 0.5, 64: 4.0},
        "dynamic": {1: 0.9, 64: 8.0},
    }
    c = choose(times, ["static", "dynamic"])
    assert c.method == "static" and c.speedup == {1: 2.0, 64: 2.5} and c.slower_at == []
    assert choose(times, ["dynamic"]).method == "dynamic"  # the guard refused static
    # static is the faster overall but slower at batch 1: dynamic is not slower anywhere
    times["static"] = {1: 1.2, 64: 2.0}
    c = choose(times, ["static", "dynamic"])
    assert c.method == "dynamic" and c.slower_at == []
    # within the noise margin (5%) is not slower
    assert choose({"float": {1: 1.0}, "static": {1: 1.04}}, ["static"]).slower_at == []
    times["dynamic"] = {1: 1.5, 64: 12.0}
    c = choose(times, ["static", "dynamic"])
    assert c.method == "static" and c.slower_at == [1]
    assert choose(times, []).method is None


def test_the_guard_refuses_a_static_model_calibrated_on_misleading_data(tmp_path):
    """The training split (what static int8 calibrates on) holds inputs 1000x smaller than the
    validation split: the calibrated ranges clip every validation input. Dynamic int8 quantizes
    each call's own range and keeps the accuracy, so it is chosen although static measured
    faster."""
    rng = np.random.default_rng(0)
    w = rng.normal(size=(4, 9)).astype(np.float32)
    x = rng.normal(size=(400, 9)).astype(np.float32)
    y = (x @ w.T).argmax(axis=1)
    x[:300] *= 1e-3

    def weights(model):
        model.linear_1.weight.copy_(torch.from_numpy(w))
        model.linear_1.bias.zero_()

    run, _ = _run(tmp_path, SPEC, x, y, weights, n_train=300)
    figures = quantize(
        run,
        max_drop=5,  # dynamic int8 loses a near-tie or two of 100 here
        timer=_times((1.0, 10.0), static=(0.5, 2.0), dynamic=(0.9, 9.0)),
        log=lambda s: None,
    )
    static, dynamic = figures["candidates"]["static"], figures["candidates"]["dynamic"]
    assert not static["accepted"] and static["accuracy_drop_points"] > 10
    assert dynamic["accepted"] and figures["method"] == "dynamic"
    assert figures["calibration"] == {
        "split": "train",
        "examples": 256,
        "seed": 0,
        "method": "minmax",
    }


def test_an_int8_model_slower_than_float_is_refused_unless_allowed(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.random((200, 1, 12, 12)).astype(np.float32)
    run, model = _run(tmp_path, CNN, x, rng.integers(0, 3, 200))
    slow = _times((1.0, 10.0), static=(1.5, 12.0), dynamic=(2.0, 20.0))
    with pytest.raises(UserError) as e:
        quantize(run, timer=slow, log=lambda s: None, max_drop=100)
    assert "int8 model refused: it is slower than the float model on this machine" in str(e.value)
    assert "batch 1: 1.500 ms int8 (static) against 1.000 ms float" in str(e.value)
    assert "batch 64: 12.000 ms int8 (static) against 10.000 ms float" in str(e.value)
    assert "--allow-slower" in str(e.value) and not (run / "model.int8.onnx").exists()

    lines = []
    figures = quantize(run, timer=slow, log=lines.append, max_drop=100, allow_slower=True)
    assert figures["slower"] and figures["method"] == "static"
    assert "warning: keeping the int8 model although it is slower" in lines[0]

    fast = _times((1.0, 10.0), static=(0.8, 4.0), dynamic=(0.9, 8.0))
    figures = quantize(run, timer=fast, log=lines.append, max_drop=100)
    saved = json.loads((run / "quantization.json").read_text())
    assert saved["method"] == "static" and saved["speedup"] == {"1": 1.25, "64": 2.5}
    assert saved["ms"] == {"float": {"1": 1.0, "64": 10.0}, "int8": {"1": 0.8, "64": 4.0}}
    assert saved["candidates"]["dynamic"]["speedup"] == {"1": 1 / 0.9, "64": 1.25}
    meta = sr.load(run / "model.int8.onnx", device="cpu", cache=False).metadata
    assert meta[Meta.QUANTIZED] == "int8" and meta[Meta.TASK] == "classification"
    assert json.loads(meta[Meta.QUANTIZATION]) == {
        "method": "static",
        "speedup": {"1": 1.25, "64": 2.5},
    }


def test_a_language_model_is_guarded_by_its_perplexity(tmp_path):
    """char_lm with fresh weights, windows of its own text: the float and int8 perplexities in
    quantization.json are those torch's cross-entropy gives the eager model (an independent
    oracle) and the int8 graph."""
    compiled = compile_file(SPECS / "char_lm.yaml")
    run = tmp_path / "run"
    codegen.write(compiled, run)
    torch.manual_seed(0)
    model = ex.instantiate(run)
    ex.export(model, compiled.ir, run / "model.onnx", vocab=compiled.text.vocab.to_json())
    rng = np.random.default_rng(0)
    tokens = rng.integers(4, len(compiled.text.vocab), (120, 33))
    x, y = tokens[:, :-1], tokens[:, 1:].copy()
    y[::3, 20:] = -100  # padding
    np.savez(run / "data.npz", x=x, y=y)
    np.savez(run / "splits.npz", train=np.arange(80), val=np.arange(80, 120), test=np.arange(0))
    figures = quantize(run, timer=_times((1.0, 10.0), static=(0.9, 9.0), dynamic=(0.5, 5.0)))
    with torch.no_grad():
        logits = model(torch.from_numpy(x[80:]))
        want = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), torch.from_numpy(y[80:]).reshape(-1)
        )
    assert figures["float"]["perplexity"] == pytest.approx(float(torch.exp(want)), rel=1e-5)
    assert figures["method"] == "dynamic" and figures["accepted"]
    assert abs(figures["error_increase_percent"]) <= 5.0
    int8 = sr.load(run / "model.int8.onnx", device="cpu", cache=False)
    got = torch.from_numpy(int8(x[80:]))
    ppl = torch.exp(
        torch.nn.functional.cross_entropy(
            got.reshape(-1, got.shape[-1]), torch.from_numpy(y[80:]).reshape(-1)
        )
    )
    assert figures["int8"]["perplexity"] == pytest.approx(float(ppl), rel=1e-5)


def test_an_accepted_int8_model_keeps_its_accuracy_within_the_guard(tmp_path):
    """Classes with a margin (no near-ties for int8 to flip): the int8 model written keeps the
    accuracy, and the figures in quantization.json are the ones numpy computes from the float
    model in torch and the int8 graph in ONNX Runtime on the validation split."""
    rng = np.random.default_rng(2)
    w = rng.normal(size=(4, 9)).astype(np.float32)
    x = rng.normal(size=(2000, 9)).astype(np.float32)
    logits = np.sort(x @ w.T, axis=1)
    x = x[logits[:, -1] - logits[:, -2] > 0.5][:400]
    y = (x @ w.T).argmax(axis=1)

    def weights(model):
        model.linear_1.weight.copy_(torch.from_numpy(w))
        model.linear_1.bias.zero_()

    run, model = _run(tmp_path, SPEC, x, y, weights, n_train=300)
    figures = quantize(
        run, timer=_times((1.0, 10.0), static=(0.8, 8.0), dynamic=(0.9, 9.0)), log=lambda s: None
    )
    val = slice(300, 400)
    with torch.no_grad():
        want = float(np.mean(model(torch.from_numpy(x[val])).numpy().argmax(1) == y[val]))
    int8 = sr.load(run / "model.int8.onnx", device="cpu", cache=False)
    got = float(np.mean(int8(x[val]).argmax(1) == y[val]))
    assert want == 1.0 and figures["float"]["accuracy"] == pytest.approx(want)
    assert figures["int8"]["accuracy"] == pytest.approx(got)
    assert figures["accepted"] and figures["method"] == "static"
    assert figures["accuracy_drop_points"] == pytest.approx(100 * (want - got))
    assert 100 * (want - got) <= 0.5


def test_the_guard_limits_are_inclusive_and_per_metric():
    acc = {"accuracy": 0.9}
    assert judge(acc, {"accuracy": 0.895}, 0.5, 5.0)[:3] == (
        "accuracy_drop_points",
        pytest.approx(0.5),
        True,
    )
    key, change, ok, shown = judge(acc, {"accuracy": 0.89}, 0.5, 5.0)
    assert change == pytest.approx(1.0) and not ok and "-1.00 points" in shown
    # regression: the mean absolute error may grow 5 percent
    assert judge({"mae": 2.0}, {"mae": 2.1}, 0.5, 5.0)[2]
    assert not judge({"mae": 2.0}, {"mae": 2.11}, 0.5, 5.0)[2]
    # a language model: perplexity, not its next-token accuracy
    key, change, ok, _ = judge(
        {"perplexity": 10.0, "accuracy": 0.5}, {"perplexity": 10.6, "accuracy": 0.5}, 0.5, 5.0
    )
    assert key == "error_increase_percent" and change == pytest.approx(6.0) and not ok
