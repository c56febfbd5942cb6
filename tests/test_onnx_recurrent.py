"""torch's recurrent layers export as native ONNX LSTM/GRU/RNN nodes (compiler/export/recurrent.py).

- The weight rearrangement and ONNX's definition (the custom ops' eager reference) equal torch's
  layers, without ONNX Runtime.
- ONNX Runtime equals PyTorch to 1e-5 at lengths 1, 7, 57 and batches 1, 3, 17, with and without
  padding (noise in padded positions changes nothing), for rnn tanh/relu, lstm and gru, stacked,
  bidirectional, learned initial state, each output form; and onnx's ReferenceEvaluator agrees
  with ONNX Runtime to 1e-4 where it can run the graph (it ignores sequence_lens, and knows no
  Relu for RNN: a Relu is added to its RNN here).
- The graphs hold one LSTM/GRU node per stacked layer and no Scan. An RNN layer becomes an If on
  batch * hidden: RNN nodes below export_recurrent.RNN_NATIVE_LIMIT, the Scan above (both
  branches are run here); policy("native") gives RNN nodes alone. Custom cells keep the Scan.
- A language model's step graph and a seq2seq model's encoder and step graphs use them too and
  chain correctly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import yaml
from onnx.reference import ReferenceEvaluator
from onnx.reference.ops.op_rnn import RNN_7

from specc.compiler import codegen
from specc.compiler import export as ex
from specc.compiler.export import language_model as lm_export
from specc.compiler.export import recurrent as export_recurrent
from specc.compiler.export import seq2seq as ex2
from specc.compiler.pipeline import compile_file

SPECS = Path(__file__).resolve().parent.parent / "specs"
FEATURES, HIDDEN = 3, 5
LENGTHS, BATCHES = (1, 7, 57), (1, 3, 17)
ONNX_OP = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}
KINDS = {
    "rnn-tanh": {"type": "rnn"},
    "rnn-relu": {"type": "rnn", "nonlinearity": "relu"},
    "lstm": {"type": "lstm"},
    "gru": {"type": "gru"},
}
# (options, reads lengths): every output form with and without a lengths input; stacked,
# bidirectional and learned initial states in several combinations.
SHAPES = {
    "single/sequence": ({}, False),
    "stacked-bidirectional-learned/sequence": (
        {"num_layers": 2, "bidirectional": True, "initial_state": "learned"},
        True,
    ),
    "bidirectional/last": ({"bidirectional": True, "output": "last"}, True),
    "stacked-learned/state": (
        {"num_layers": 2, "initial_state": "learned", "output": "state"},
        True,
    ),
    "stacked-bidirectional/last": (
        {"num_layers": 2, "bidirectional": True, "output": "last"},
        False,
    ),
    "bidirectional-learned/state": (
        {"bidirectional": True, "initial_state": "learned", "output": "state"},
        False,
    ),
}


def build(tmp_path, layers, lengths=False, shape=("time", FEATURES), cells=None, seed=0):
    inputs = {"x": {"shape": list(shape), "dtype": "float32"}}
    if lengths:
        inputs["n"] = {"shape": [], "dtype": "int64"}
    spec = {"specc": 1, "name": "seq", "task": "regression", "inputs": inputs, "model": layers}
    if cells:
        spec["cells"] = cells
    path = tmp_path / "seq.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    compiled = compile_file(path)
    codegen.write(compiled, tmp_path / "gen")
    torch.manual_seed(seed)
    model = ex.instantiate(tmp_path / "gen")
    with torch.no_grad():  # learned initial states start at zero: make every parameter matter
        for p in model.parameters():
            p.uniform_(-0.4, 0.4)
    return compiled, model


def op_types(path) -> list[str]:
    return [n.op_type for n in onnx.load(str(path)).graph.node]


def branches(path) -> dict[str, list[str]]:
    """The op types in the then and else branches of the graph's one If."""
    (node,) = [n for n in onnx.load(str(path)).graph.node if n.op_type == "If"]
    return {a.name: [n.op_type for n in a.g.node] for a in node.attribute}


class RNN(RNN_7):
    """onnx's reference RNN, which knows Tanh and Affine only, with Relu added."""

    op_domain = ""

    def choose_act(self, name, alpha, beta):
        if name in ("Relu", "relu"):
            return lambda x: np.maximum(x, 0)
        return super().choose_act(name, alpha, beta)


def padded(batch: int, length: int, seed: int):
    """x, lengths (the first row full, others random in 1..length) and x with noise in the padding."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, length, FEATURES, generator=g)
    lengths = torch.randint(1, length + 1, (batch,), generator=g)
    lengths[0] = length
    noisy = x.clone()
    for i, n in enumerate(lengths.tolist()):
        noisy[i, n:] = 100 * torch.randn(length - n, FEATURES, generator=g)
    return x, lengths, noisy


# ----------------------------------------------------------------------------- without ONNX


@pytest.mark.parametrize(
    "options",
    [
        {"type": "rnn"},
        {"type": "rnn", "nonlinearity": "relu", "num_layers": 2, "bidirectional": True},
        {"type": "lstm", "num_layers": 2, "bidirectional": True, "initial_state": "learned"},
        {"type": "lstm"},
        {"type": "gru", "bidirectional": True},
        {"type": "gru", "num_layers": 3, "initial_state": "learned"},
    ],
    ids=lambda o: "-".join(str(v) for v in o.values()),
)
def test_onnx_weights_and_definition_equal_torchs_layer(tmp_path, options):
    """The custom ops run ONNX's definition in torch when called eagerly: through the rearranged
    weights they must give what torch's own layer gives, padding included."""
    _, model = build(tmp_path, [{"hidden_size": HIDDEN, "lengths": "n", **options}], lengths=True)
    (layer,) = [m for m in model.modules() if export_recurrent.supported(m)]
    x, lengths, noisy = padded(4, 9, seed=1)
    hx = layer.initial_state(4)
    with torch.no_grad():
        want_y, want_state = layer(x, hx, lengths)
        with export_recurrent.native_recurrent(model) as switched:
            assert len(switched) == 1
            got_y, got_state = export_recurrent.native_path(layer, noisy, hx, lengths)
    torch.testing.assert_close(got_y, want_y, atol=1e-6, rtol=1e-5)
    for got, want in zip(
        got_state if isinstance(got_state, tuple) else (got_state,),
        want_state if isinstance(want_state, tuple) else (want_state,),
        strict=True,
    ):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)


def test_the_switch_leaves_the_model_as_it_was(tmp_path):
    compiled, model = build(
        tmp_path, [{"type": "lstm", "hidden_size": HIDDEN, "num_layers": 2}], lengths=False
    )
    keys = list(model.state_dict())
    x = torch.randn(2, 5, FEATURES)
    with torch.no_grad():
        before = model(x)
    ex.export(model, compiled.ir, tmp_path / "m.onnx")
    assert list(model.state_dict()) == keys
    assert "_scan" not in model.lstm_1.__dict__
    assert not any("onnx" in name for name, _ in model.named_buffers())
    with torch.no_grad():
        torch.testing.assert_close(model(x), before)


# ----------------------------------------------------------------------------- ONNX Runtime


CASES = [(kind, shape, "auto") for kind in KINDS for shape in SHAPES] + [
    (kind, shape, "native")
    for kind in ("rnn-tanh", "rnn-relu")
    for shape in ("stacked-bidirectional-learned/sequence", "bidirectional-learned/state")
]


@pytest.mark.parametrize("kind,shape,how", CASES, ids=lambda v: str(v))
def test_native_nodes_equal_pytorch_and_the_reference(tmp_path, kind, shape, how):
    options, reads_lengths = SHAPES[shape]
    layer = {**KINDS[kind], "hidden_size": HIDDEN, **options}
    if reads_lengths:
        layer["lengths"] = "n"
    compiled, model = build(tmp_path, [layer], lengths=reads_lengths)
    with export_recurrent.policy(how):
        path = ex.export(model, compiled.ir, tmp_path / "m.onnx")
    op, layers = ONNX_OP[layer["type"]], options.get("num_layers", 1)
    batches = BATCHES
    if op == "RNN" and how == "auto":  # an If: RNN nodes up to the limit, the Scan beyond
        assert op not in op_types(path) and "Scan" not in op_types(path)
        assert branches(path) and all(ops.count("If") == 0 for ops in branches(path).values())
        then, other = branches(path)["then_branch"], branches(path)["else_branch"]
        assert then.count(op) == layers and "Scan" not in then
        assert "Scan" in other and op not in other
        big = 1 + max(export_recurrent.RNN_NATIVE_LIMIT.values()) // HIDDEN
        assert max(BATCHES) * HIDDEN <= min(export_recurrent.RNN_NATIVE_LIMIT.values())
        batches = (*BATCHES, big)  # this one runs the Scan
    else:
        assert op_types(path).count(op) == layers
        assert "Scan" not in op_types(path) and "If" not in op_types(path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    reference = ReferenceEvaluator(str(path), new_ops=[RNN])
    worst = {"torch": 0.0, "reference": 0.0} | ({"padded": 0.0} if reads_lengths else {})
    for length in LENGTHS:
        for batch in batches:
            x, lengths, noisy = padded(batch, length, seed=length * 100 + batch)
            full = torch.full((batch,), length)
            runs = [(x, full, x, "torch")]  # no padding
            if reads_lengths:
                runs.append((x, lengths, noisy, "padded"))
            for clean, n, fed, what in runs:
                args = (clean, n) if reads_lengths else (clean,)
                with torch.no_grad():
                    want = model(*args).numpy()
                feeds = {"x": fed.numpy()} | ({"n": n.numpy()} if reads_lengths else {})
                got = session.run(None, feeds)[0]
                assert got.shape == want.shape
                worst[what] = max(worst[what], float(np.abs(got - want).max()))
                if what == "padded" and layer.get("output", "sequence") == "sequence":
                    for i, k in enumerate(n.tolist()):  # padded positions output zeros
                        assert not got[i, k:].any()
                # the reference ignores sequence_lens (no padding only), and is not needed for
                # the Scan branch
                if what == "torch" and batch in BATCHES:
                    ref = reference.run(None, feeds)[0]
                    worst["reference"] = max(worst["reference"], float(np.abs(got - ref).max()))
    print(f"max abs diff, {kind} {shape} {how}: {worst}")  # pytest -s shows the figures
    assert worst["torch"] <= 1e-5 and worst.get("padded", 0.0) <= 1e-5, worst
    assert worst["reference"] <= 1e-4, worst


def test_a_custom_cell_keeps_the_scan(tmp_path):
    gru_eq = {
        "state": {"h": "hidden"},
        "params": {"W": ["hidden", "input"], "U": ["hidden", "hidden"], "b": ["hidden"]},
        "equations": ["h = tanh(W @ x + U @ h + b)"],
    }
    layers = [
        {"type": "recurrent", "cell": "elman", "hidden_size": HIDDEN},
        {"type": "gru", "hidden_size": HIDDEN},
    ]
    compiled, model = build(tmp_path, layers, cells={"elman": gru_eq})
    path = ex.export(model, compiled.ir, tmp_path / "m.onnx")
    ops = op_types(path)
    assert ops.count("Scan") == 1 and ops.count("GRU") == 1
    x = torch.randn(3, 7, FEATURES)
    with torch.no_grad():
        want = model(x).numpy()
    got = ort.InferenceSession(str(path)).run(None, {"x": x.numpy()})[0]
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_policy_scan_keeps_the_scan(tmp_path):
    compiled, model = build(tmp_path, [{"type": "lstm", "hidden_size": HIDDEN}])
    with export_recurrent.policy("scan"):
        path = ex.export(model, compiled.ir, tmp_path / "m.onnx")
    assert "Scan" in op_types(path) and "LSTM" not in op_types(path)
    with pytest.raises(ValueError, match="policy is one of"):
        with export_recurrent.policy("fast"):
            pass


# ----------------------------------------------------------------------------- step graphs


def test_a_language_models_step_graph_uses_lstm_nodes_and_chains(tmp_path):
    compiled = compile_file(SPECS / "char_lm.yaml")
    codegen.write(compiled, tmp_path / "gen")
    torch.manual_seed(0)
    model = ex.instantiate(tmp_path / "gen")
    vocab = compiled.text.vocab.to_json()
    full = ex.export(model, compiled.ir, tmp_path / "model.onnx", vocab=vocab)
    step = lm_export.export_step(model, compiled.ir, tmp_path / "step.onnx", vocab=vocab)
    for path in (full, step):
        ops = op_types(path)
        assert ops.count("LSTM") == 2 and "Scan" not in ops, path.name
    parity = lm_export.step_parity(model, step, compiled.ir, 1e-5)  # includes a 7 + 5 chained run
    assert parity.ok, parity.runs
    # one token at a time, the state carried, equals the whole sequence in PyTorch
    session = ort.InferenceSession(str(step), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    tokens = torch.randint(4, len(compiled.text.vocab), (3, 20))
    with torch.no_grad():
        whole = model(tokens).numpy()
        state = [s.numpy() for s in model.initial_state(3)]
    outs = []
    for t in range(tokens.shape[1]):
        logits, *state = session.run(None, dict(zip(names, [tokens[:, t : t + 1].numpy(), *state])))
        outs.append(logits)
    np.testing.assert_allclose(np.concatenate(outs, axis=1), whole, atol=1e-5)


RNN_ENCODER = [
    {"type": "embedding", "num_embeddings": "source_vocab", "embedding_dim": 8},
    {
        "type": "gru",
        "name": "encoded",
        "hidden_size": 6,
        "bidirectional": True,
        "lengths": "source_lengths",
    },
]
LSTM_DECODER = [
    {"type": "embedding", "num_embeddings": "target_vocab", "embedding_dim": 8},
    {
        "type": "lstm",
        "name": "state",
        "hidden_size": 16,
        "num_layers": 2,
        "initial_state": {"from": "encoded"},
    },
    {
        "type": "attention",
        "name": "context",
        "from": ["state", "encoded"],
        "score": "additive",
        "attention_size": 8,
        "lengths": "source_lengths",
    },
    {"type": "concat", "from": ["state", "context"], "dim": -1},
    {"type": "linear", "out_features": "target_vocab"},
]


def test_seq2seq_encoder_and_step_graphs_use_native_nodes(tmp_path):
    spec = {
        "specc": 1,
        "name": "s2s",
        "task": "seq2seq",
        "inputs": {"source": {"shape": ["time"], "dtype": "int64"}},
        "encoder": RNN_ENCODER,
        "decoder": LSTM_DECODER,
        "data": {"type": "pairs", "generate": "reverse", "count": 200},
    }
    (tmp_path / "s2s.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    compiled = compile_file(tmp_path / "s2s.yaml")
    codegen.write(compiled, tmp_path / "gen")
    torch.manual_seed(0)
    model = ex.instantiate(tmp_path / "gen")
    vocabs = {"source": compiled.text.source_vocab, "target": compiled.text.target_vocab}
    info = ex2.describe(compiled.ir, vocabs, {"target": 12})
    paths = ex2.export(model, compiled.ir, tmp_path / "out", 20, info)
    full = ex.export(model, compiled.ir, tmp_path / "out" / "model.onnx")
    encoder, step = op_types(paths["encoder"]), op_types(paths["step"])
    assert encoder.count("GRU") == 1 and "LSTM" not in encoder and "Scan" not in encoder
    assert step.count("LSTM") == 2 and "Scan" not in step
    assert op_types(full).count("GRU") == 1 and op_types(full).count("LSTM") == 2
    parity = ex2.parity(model, compiled.ir, paths, 1e-5)
    assert parity.ok, parity.runs
