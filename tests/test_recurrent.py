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
from specc.compiler import export as ex
from specc.compiler.pipeline import compile_file

CASES = [
    ("rnn", {}),
    ("rnn", {"nonlinearity": "relu", "num_layers": 2, "bidirectional": True}),
    ("lstm", {}),
    ("lstm", {"num_layers": 2, "bidirectional": True}),
    ("gru", {"bidirectional": True}),
    ("gru", {"num_layers": 3}),
]


def build(tmp_path, layers, shape=("time", 5), dtype="float32", cells=None, lengths=False):
    inputs = {"x": {"shape": list(shape), "dtype": dtype}}
    if lengths:
        inputs["n"] = {"shape": [], "dtype": "int64"}
    spec = {"specc": 1, "name": "seq", "task": "regression", "inputs": inputs, "model": layers}
    if cells:
        spec["cells"] = cells
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


PADDED = [
    {"type": "gru", "bidirectional": True, "num_layers": 2},
    {"type": "lstm", "bidirectional": True},
    {"type": "rnn", "initial_state": "learned"},
    {"type": "lstm", "num_layers": 2, "initial_state": "learned"},
    {"type": "recurrent", "cell": "gru_eq", "initial_state": "learned"},
]
GRU_EQ = {  # the GRU as equations (the cells tests prove it equal to nn.GRU)
    "state": {"h": "hidden"},
    "params": {
        "W_r": ["hidden", "input"],
        "U_r": ["hidden", "hidden"],
        "b_r": ["hidden"],
        "W_z": ["hidden", "input"],
        "U_z": ["hidden", "hidden"],
        "b_z": ["hidden"],
        "W_n": ["hidden", "input"],
        "U_n": ["hidden", "hidden"],
        "b_n": ["hidden"],
    },
    "equations": [
        "r = sigmoid(W_r @ x + U_r @ h + b_r)",
        "z = sigmoid(W_z @ x + U_z @ h + b_z)",
        "n = tanh(W_n @ x + r * (U_n @ h) + b_n)",
        "h = (1 - z) * n + z * h",
    ],
}


@pytest.mark.parametrize("output", ["sequence", "last", "state"])
@pytest.mark.parametrize(
    "options", PADDED, ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items())
)
def test_padding_never_changes_real_positions(tmp_path, options, output):
    """Oracle: each sequence run alone, trimmed to its length, with no lengths input."""
    layer = {"hidden_size": 4, "output": output, "lengths": "n", **options}
    cells = {"gru_eq": GRU_EQ} if options["type"] == "recurrent" else None
    compiled, model = build(tmp_path, [layer], cells=cells, lengths=True)
    with torch.no_grad():
        for p in model.parameters():  # learned initial states start at zero: make them matter
            p.add_(0.1 * torch.randn_like(p))
    lengths = torch.tensor([7, 1, 4, 7, 2])
    x = torch.randn(5, 7, 5)
    garbage = x.clone()
    for i, n in enumerate(lengths):
        garbage[i, n:] = 1e3 * torch.randn(
            7 - n, 5
        )  # padding that would wreck any state it touched
    with torch.no_grad():
        got = model(garbage, lengths)
        for i, n in enumerate(lengths):
            alone = model(x[i : i + 1, :n], torch.tensor([n]))
            if output == "sequence":
                torch.testing.assert_close(got[i, :n], alone[0], atol=1e-5, rtol=1e-5)
                assert float(got[i, n:].abs().sum()) == 0.0
            else:
                torch.testing.assert_close(got[i], alone[0], atol=1e-5, rtol=1e-5)
    path = ex.export(model, compiled.ir, tmp_path / "m.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch, length in ((5, 7), (1, 1), (3, 12)):
        xb = torch.randn(batch, length, 5)
        nb = torch.randint(1, length + 1, (batch,))
        with torch.no_grad():
            want = model(xb, nb).numpy()
        got = session.run(None, {"x": xb.numpy(), "n": nb.numpy()})[0]
        np.testing.assert_allclose(got, want, atol=1e-5, err_msg=f"batch {batch}, length {length}")


def test_state_output_is_every_final_state(tmp_path):
    layer = {
        "type": "lstm",
        "hidden_size": 3,
        "num_layers": 2,
        "bidirectional": True,
        "output": "state",
    }
    compiled, model = build(tmp_path, [layer])
    assert compiled.inferred.out_shapes["lstm_1"] == (2 * 2 * 2 * 3,)
    x = torch.randn(4, 6, 5)
    with torch.no_grad():
        _, (h, c) = torch.nn.LSTM.forward(model.lstm_1, x)
        want = torch.cat([h.transpose(0, 1).flatten(1), c.transpose(0, 1).flatten(1)], dim=-1)
        torch.testing.assert_close(model(x), want)


def test_lengths_must_be_a_batch_vector(write_spec):
    path = write_spec(
        "specc: 1\nname: t\ntask: regression\ninputs: {x: {shape: [time, 2]}, n: {shape: [3], dtype: int64}}\n"
        "model:\n  - {type: gru, hidden_size: 4, lengths: n}\n"
    )
    (e,) = errors_of(run_specc("check", path))
    assert "lengths 'n' must have shape (batch,), got (batch, 3)" in e["msg"], e


def test_orthogonal_init_makes_each_gate_block_orthogonal(tmp_path):
    _, model = build(tmp_path, [{"type": "gru", "hidden_size": 6, "init": "orthogonal"}])
    for block in model.gru_1.weight_hh_l0.detach().split(6):
        torch.testing.assert_close(block @ block.T, torch.eye(6), atol=1e-5, rtol=0)


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


MUT1 = {
    "input_size": "hidden",
    "state": {"h": "hidden"},
    "params": {
        "W_xz": ["hidden", "input"],
        "b_z": ["hidden"],
        "W_xr": ["hidden", "input"],
        "W_hr": ["hidden", "hidden"],
        "b_r": ["hidden"],
        "W_hh": ["hidden", "hidden"],
        "b_h": ["hidden"],
    },
    "equations": [
        "z = sigmoid(W_xz @ x + b_z)",
        "r = sigmoid(W_xr @ x + W_hr @ h + b_r)",
        "h = tanh(W_hh @ (r * h) + tanh(x) + b_h) * z + h * (1 - z)",
    ],
}


def build_cell_model(tmp_path, layer, features=6):
    return build(tmp_path, [layer], shape=("time", features), cells={"mut1": MUT1})


@pytest.mark.parametrize("output", ["sequence", "last"])
def test_a_custom_cell_layer_exports_and_runs_at_any_length(tmp_path, output):
    compiled, model = build_cell_model(
        tmp_path, {"type": "recurrent", "cell": "mut1", "hidden_size": 6, "output": output}
    )
    assert (
        compiled.inferred.total_params
        == 3 * 36 + 3 * 6 + 36
        == sum(p.numel() for p in model.parameters())
    )
    path = ex.export(model, compiled.ir, tmp_path / "m.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch, length in ((1, 1), (3, 4), (2, 25)):
        x = torch.randn(batch, length, 6)
        with torch.no_grad():
            want = model(x).numpy()
        np.testing.assert_allclose(session.run(None, {"x": x.numpy()})[0], want, atol=1e-5)
    # and the step is MUT1 as the paper writes it (checked against the cell's own parameters)
    cell = model.recurrent_1.cell
    x, h = torch.randn(1, 1, 6), torch.zeros(1, 6)
    p = dict(cell.named_parameters())
    z = torch.sigmoid(x[:, 0] @ p["W_xz"].T + p["b_z"])
    r = torch.sigmoid(x[:, 0] @ p["W_xr"].T + h @ p["W_hr"].T + p["b_r"])
    h1 = torch.tanh((r * h) @ p["W_hh"].T + torch.tanh(x[:, 0]) + p["b_h"]) * z + h * (1 - z)
    with torch.no_grad():
        got = model(x)
    torch.testing.assert_close(got.reshape(1, 6), h1)


def test_custom_cell_mistakes_are_located(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "specc: 1\nname: t\ntask: regression\ninputs: {x: {shape: [time, 4]}}\n"
        "cells:\n  elman:\n    state: {h: hidden}\n    params: {W: [hidden, input], b: [hidden]}\n"
        "    equations: ['h = tanh(W @ x + b)']\n"
        "model:\n  - {type: recurrent, cell: elmann, hidden_size: 3}\n"
    )
    with pytest.raises(Exception) as e:
        compile_file(spec)
    (d,) = e.value.diagnostics
    assert (
        d.pos.line == 11
        and "no cell named 'elmann'" in d.message
        and d.hint == "did you mean 'elman'?"
    )
    compiled_ok, _ = build_cell_model(
        tmp_path, {"type": "recurrent", "cell": "mut1", "hidden_size": 6}
    )
    assert compiled_ok.inferred.total_params > 0
    bad = tmp_path / "b.yaml"
    bad.write_text(
        yaml.safe_dump(
            {
                "specc": 1,
                "name": "b",
                "task": "regression",
                "inputs": {"x": {"shape": ["time", 5]}},
                "cells": {"mut1": MUT1},
                "model": [{"type": "recurrent", "cell": "mut1", "hidden_size": 6}],
            },
            sort_keys=False,
        )
    )
    with pytest.raises(Exception) as e:
        compile_file(bad)
    assert (
        "cell 'mut1' takes inputs of the hidden size 6, got 5 features"
        in e.value.diagnostics[0].message
    )


def test_the_adding_problem_is_what_it_says():
    from specc.compiler.datasets.adding import generate

    x, y = generate(200, length=12, seed=4)
    assert x.shape == (200, 12, 2) and y.shape == (200, 1)
    marks = x[:, :, 1]
    assert (marks.sum(axis=1) == 2).all() and (marks[:, :6].sum(axis=1) == 1).all()
    np.testing.assert_allclose((x[:, :, 0] * marks).sum(axis=1, keepdims=True), y, rtol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("spec", ["irnn.yaml", "mut1.yaml", "mut2.yaml", "mut3.yaml"])
def test_recurrent_examples_learn_the_adding_problem(tmp_path, spec):
    import json

    from helpers import SPECS

    import specc.runtime as sr

    out = tmp_path / "run"
    # one thread: tiny recurrent steps gain nothing from two, and tests run two at a time
    proc = run_specc("train", SPECS / spec, "-o", out, "--quiet", env={"OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["metrics"]["val_mse"] <= 0.02  # predicting the mean scores 1/6
    # ONNX Runtime on sequences longer than any seen in training still computes what PyTorch does
    from specc.compiler.datasets.adding import generate

    x, _ = generate(16, length=45, seed=9)
    model = ex.instantiate(out, out / report["weights"])
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(sr.load(out)(x), want, atol=1e-4)
