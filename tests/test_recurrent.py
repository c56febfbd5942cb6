"""Recurrent layers: shapes and parameter counts equal torch's, and the exported ONNX computes
what PyTorch computes at sequence lengths other than the export example's (1, short, longer),
stacked and bidirectional included, with the declared output shape keeping its time dim."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import yaml
from helpers import errors_of, run_specc
from specc.compiler import codegen
from specc.compiler.pipeline import compile_file
from specc.runtime import export as ex

CASES = [
    ("rnn", {}),
    ("rnn", {"nonlinearity": "relu", "num_layers": 2, "bidirectional": True}),
    ("lstm", {}),
    ("lstm", {"num_layers": 2, "bidirectional": True}),
    ("gru", {"bidirectional": True}),
    ("gru", {"num_layers": 3}),
]


def build(tmp_path, layers, shape=("time", 5), dtype="float32"):
    spec = {
        "specc": 1,
        "name": "seq",
        "task": "regression",
        "inputs": {"x": {"shape": list(shape), "dtype": dtype}},
        "model": layers,
    }
    path = tmp_path / "seq.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    compiled = compile_file(path)
    codegen.write(compiled, tmp_path / "gen")
    torch.manual_seed(0)
    return compiled, ex.instantiate(tmp_path / "gen")


@pytest.mark.parametrize("output", ["sequence", "last"])
@pytest.mark.parametrize("kind,options", CASES, ids=lambda v: str(v))
def test_exported_recurrence_runs_at_any_length(tmp_path, kind, options, output):
    layer = {"type": kind, "hidden_size": 4, "output": output, **options}
    compiled, model = build(tmp_path, [layer])
    ref = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind](
        5, 4, batch_first=True, **{k: v for k, v in options.items()}
    )
    assert compiled.inferred.total_params == sum(p.numel() for p in ref.parameters())
    assert sum(p.numel() for p in model.parameters()) == compiled.inferred.total_params
    path = ex.export(model, compiled.ir, tmp_path / "m.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    declared = [
        d.dim_param or d.dim_value
        for d in onnx.load(str(path)).graph.output[0].type.tensor_type.shape.dim
    ]
    width = 4 * (2 if options.get("bidirectional") else 1)
    assert declared == (["batch", "time", width] if output == "sequence" else ["batch", width])
    for batch, length in ((1, 1), (4, 3), (2, 20), (3, 8)):
        x = torch.randn(batch, length, 5)
        with torch.no_grad():
            want = model(x).numpy()
        got = session.run(None, {"x": x.numpy()})[0]
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=1e-5, err_msg=f"batch {batch}, length {length}")


def test_last_of_a_bidirectional_layer_is_both_directions_final_states(tmp_path):
    _, model = build(
        tmp_path, [{"type": "lstm", "hidden_size": 3, "bidirectional": True, "output": "last"}]
    )
    lstm = model.lstm_1
    x = torch.randn(2, 6, 5)
    with torch.no_grad():
        seq, _ = lstm(x)
        last = model(x)
    # forward direction ends at the last step, the backward one at the first
    torch.testing.assert_close(last, torch.cat([seq[:, -1, :3], seq[:, 0, 3:]], dim=-1))


def test_irnn_starts_from_the_identity(tmp_path):
    _, model = build(
        tmp_path, [{"type": "rnn", "hidden_size": 6, "nonlinearity": "relu", "init": "identity"}]
    )
    rnn = model.rnn_1
    torch.testing.assert_close(rnn.weight_hh_l0, torch.eye(6))
    assert float(rnn.bias_ih_l0.abs().sum() + rnn.bias_hh_l0.abs().sum()) == 0.0
    assert rnn.nonlinearity == "relu"


def test_embedding_then_gru_language_model_shape(tmp_path):
    layers = [
        {"type": "embedding", "num_embeddings": 30, "embedding_dim": 8},
        {"type": "gru", "hidden_size": 16},
        {"type": "linear", "out_features": 30},
    ]
    compiled, model = build(tmp_path, layers, shape=("time",), dtype="int64")
    assert compiled.inferred.out_shapes["linear_1"] == ("time", 30)
    path = ex.export(model, compiled.ir, tmp_path / "lm.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ids = torch.randint(0, 30, (2, 13))
    with torch.no_grad():
        np.testing.assert_allclose(
            session.run(None, {"x": ids.numpy()})[0], model(ids).numpy(), atol=1e-5
        )


def test_a_recurrent_layer_fed_a_non_sequence_is_a_located_error(write_spec):
    path = write_spec(
        "specc: 1\nname: t\ntask: regression\ninputs: {x: {shape: [6]}}\nmodel:\n  - {type: lstm, hidden_size: 4}\n"
    )
    (e,) = errors_of(run_specc("check", path))
    assert (
        e["line"] == "6"
        and "lstm expects a sequence (batch, time, features), got (batch, 6)" in e["msg"]
    )
