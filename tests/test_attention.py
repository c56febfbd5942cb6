"""Attention layers against torch's own modules on the same weights, their padding masks in
PyTorch and ONNX Runtime, the sinusoidal code against its formula, and located errors."""

from __future__ import annotations

import math

import numpy as np
import onnxruntime as ort
import pytest
import torch
import yaml
from helpers import errors_of, run_specc

from specc.compiler import codegen
from specc.compiler import export as ex
from specc.compiler.pipeline import compile_file


def build(tmp_path, layers, inputs=None):
    inputs = inputs or {"x": {"shape": ["time", 8]}, "n": {"shape": [], "dtype": "int64"}}
    spec = {"specc": 1, "name": "att", "task": "regression", "inputs": inputs, "model": layers}
    path = tmp_path / "att.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    compiled = compile_file(path)
    codegen.write(compiled, tmp_path / "gen")
    torch.manual_seed(0)
    return compiled, ex.instantiate(tmp_path / "gen")


def copy_attention(ours, theirs):
    """torch packs q, k, v into in_proj; ours keeps three linear maps."""
    with torch.no_grad():
        w, b = theirs.in_proj_weight.chunk(3), theirs.in_proj_bias.chunk(3)
        for lin, wi, bi in zip((ours.q, ours.k, ours.v), w, b, strict=True):
            lin.weight.copy_(wi)
            lin.bias.copy_(bi)
        ours.out.weight.copy_(theirs.out_proj.weight)
        ours.out.bias.copy_(theirs.out_proj.bias)


def key_padding(lengths, t):
    return torch.arange(t)[None, :] >= lengths[:, None]


@pytest.mark.parametrize("causal", [False, True])
def test_multihead_attention_equals_torch(tmp_path, causal):
    layer = {"type": "multihead_attention", "num_heads": 2, "causal": causal, "lengths": "n"}
    compiled, model = build(tmp_path, [layer])
    torch_mha = torch.nn.MultiheadAttention(8, 2, batch_first=True).eval()
    assert compiled.inferred.total_params == sum(p.numel() for p in torch_mha.parameters())
    copy_attention(model.multihead_attention_1, torch_mha)
    x, n = torch.randn(3, 6, 8), torch.tensor([6, 2, 4])
    mask = torch.ones(6, 6, dtype=torch.bool).triu(1) if causal else None
    with torch.no_grad():
        want, _ = torch_mha(x, x, x, key_padding_mask=key_padding(n, 6), attn_mask=mask)
        got = model(x, n)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("norm,activation", [("post", "relu"), ("pre", "gelu")])
def test_transformer_encoder_layer_equals_torch(tmp_path, norm, activation):
    layer = {
        "type": "transformer_encoder_layer", "num_heads": 2, "feedforward": 16,
        "norm": norm, "activation": activation, "lengths": "n",
    }  # fmt: skip
    compiled, model = build(tmp_path, [layer])
    theirs = torch.nn.TransformerEncoderLayer(
        8, 2, 16, dropout=0.1, activation=activation, batch_first=True, norm_first=norm == "pre"
    ).eval()
    assert compiled.inferred.total_params == sum(p.numel() for p in theirs.parameters())
    ours = model.transformer_encoder_layer_1
    copy_attention(ours.self_attention, theirs.self_attn)
    with torch.no_grad():
        for a, b in ((ours.feedforward[0], theirs.linear1), (ours.feedforward[3], theirs.linear2)):
            a.weight.copy_(b.weight)
            a.bias.copy_(b.bias)
        for a, b in zip(ours.norms, (theirs.norm1, theirs.norm2), strict=True):
            a.load_state_dict(b.state_dict())
    x, n = torch.randn(3, 7, 8), torch.tensor([7, 3, 5])
    with torch.no_grad():
        want = theirs(x, src_key_padding_mask=key_padding(n, 7))
        got = model(x, n)
    real = ~key_padding(n, 7)  # torch's fast path may zero padded positions; compare real ones
    torch.testing.assert_close(got[real], want[real], atol=1e-5, rtol=1e-5)


def test_transformer_decoder_layer_equals_torch(tmp_path):
    inputs = {
        "y": {"shape": ["time", 8]},
        "memory": {"shape": ["source", 8]},
        "n": {"shape": [], "dtype": "int64"},
    }
    layer = {
        "type": "transformer_decoder_layer", "num_heads": 2, "feedforward": 16,
        "from": ["y", "memory"], "lengths": "n",
    }  # fmt: skip
    compiled, model = build(tmp_path, [layer], inputs)
    theirs = torch.nn.TransformerDecoderLayer(8, 2, 16, batch_first=True).eval()
    assert compiled.inferred.total_params == sum(p.numel() for p in theirs.parameters())
    ours = model.transformer_decoder_layer_1
    copy_attention(ours.self_attention, theirs.self_attn)
    copy_attention(ours.cross_attention, theirs.multihead_attn)
    with torch.no_grad():
        for a, b in ((ours.feedforward[0], theirs.linear1), (ours.feedforward[3], theirs.linear2)):
            a.weight.copy_(b.weight)
            a.bias.copy_(b.bias)
        for a, b in zip(ours.norms, (theirs.norm1, theirs.norm2, theirs.norm3), strict=True):
            a.load_state_dict(b.state_dict())
    y, memory, n = torch.randn(2, 5, 8), torch.randn(2, 9, 8), torch.tensor([9, 4])
    causal = torch.ones(5, 5, dtype=torch.bool).triu(1)
    with torch.no_grad():
        want = theirs(y, memory, tgt_mask=causal, memory_key_padding_mask=key_padding(n, 9))
        got = model(y, memory, n)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_padding_never_reaches_real_positions_in_onnx(tmp_path):
    layers = [
        {"type": "positional_encoding"},
        {"type": "transformer_encoder_layer", "num_heads": 2, "lengths": "n", "repeat": 2},
        {"type": "multihead_attention", "num_heads": 4, "lengths": "n"},
    ]
    compiled, model = build(tmp_path, layers)
    x, n = torch.randn(4, 7, 8), torch.tensor([7, 1, 3, 5])
    garbage = x.clone()
    for i, k in enumerate(n):
        garbage[i, k:] = 100 * torch.randn(7 - k, 8)
    with torch.no_grad():
        a, b = model(x, n), model(garbage, n)
        for i, k in enumerate(n):
            torch.testing.assert_close(a[i, :k], b[i, :k])
            alone = model(x[i : i + 1, :k], n[i : i + 1])
            torch.testing.assert_close(a[i, :k], alone[0], atol=1e-5, rtol=1e-5)
    path = ex.export(model, compiled.ir, tmp_path / "m.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch, length in ((1, 1), (4, 7), (3, 19)):
        xb, nb = torch.randn(batch, length, 8), torch.randint(1, length + 1, (batch,))
        with torch.no_grad():
            want = model(xb, nb).numpy()
        got = session.run(None, {"x": xb.numpy(), "n": nb.numpy()})[0]
        np.testing.assert_allclose(got, want, atol=1e-5, err_msg=f"batch {batch}, length {length}")


def test_sinusoidal_encoding_follows_the_formula(tmp_path):
    _, model = build(tmp_path, [{"type": "positional_encoding"}], {"x": {"shape": ["time", 6]}})
    with torch.no_grad():
        code = model(torch.zeros(1, 5, 6))[0]
    for pos in range(5):
        for i in range(3):
            angle = pos / 10000 ** (2 * i / 6)
            assert float(code[pos, 2 * i]) == pytest.approx(math.sin(angle), abs=1e-6)
            assert float(code[pos, 2 * i + 1]) == pytest.approx(math.cos(angle), abs=1e-6)


def test_attention_mistakes_are_located(write_spec):
    head = "specc: 1\nname: a\ntask: regression\ninputs: {x: {shape: [time, 6]}}\nmodel:\n"
    (e,) = errors_of(
        run_specc("check", write_spec(head + "  - {type: multihead_attention, num_heads: 4}\n"))
    )
    assert e["line"] == "6" and "num_heads 4 does not divide the model size 6" in e["msg"]
    path = write_spec(
        head + "  - {type: transformer_decoder_layer, num_heads: 2, from: [x, memory]}\n"
    )
    (e,) = errors_of(run_specc("check", path))
    assert "'from: memory' names no layer or input" in e["msg"]


@pytest.mark.parametrize("score", ["dot", "general", "additive"])
def test_attention_scores_follow_their_papers(tmp_path, score):
    """Oracle: each score written out with explicit loops over positions."""
    inputs = {"q": {"shape": ["time", 4]}, "m": {"shape": ["source", 4 if score == "dot" else 6]}}
    inputs["n"] = {"shape": [], "dtype": "int64"}
    layer = {
        "type": "attention",
        "score": score,
        "attention_size": 5,
        "from": ["q", "m"],
        "lengths": "n",
    }
    compiled, model = build(tmp_path, [layer], inputs)
    att = model.attention_1
    assert compiled.inferred.total_params == sum(p.numel() for p in model.parameters())
    q, m, n = torch.randn(2, 3, 4), torch.randn(2, 5, inputs["m"]["shape"][1]), torch.tensor([5, 2])
    with torch.no_grad():
        got = model(q, m, n)
        for b in range(2):
            for i in range(3):
                scores = []
                for j in range(int(n[b])):
                    if score == "dot":
                        s = torch.dot(q[b, i], m[b, j]) / 2.0
                    elif score == "general":
                        s = q[b, i] @ att.w.weight @ m[b, j]
                    else:
                        s = att.v.weight[0] @ torch.tanh(
                            att.w_q.weight @ q[b, i] + att.w_k.weight @ m[b, j] + att.w_k.bias
                        )
                    scores.append(s)
                w = torch.softmax(torch.stack(scores), dim=0)
                want = (w[:, None] * m[b, : int(n[b])]).sum(dim=0)
                torch.testing.assert_close(got[b, i], want, atol=1e-5, rtol=1e-5)
    path = ex.export(model, compiled.ir, tmp_path / "a.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    q2, m2, n2 = torch.randn(3, 7, 4), torch.randn(3, 11, m.shape[-1]), torch.tensor([11, 1, 6])
    with torch.no_grad():
        want = model(q2, m2, n2).numpy()
    got = session.run(None, {"q": q2.numpy(), "m": m2.numpy(), "n": n2.numpy()})[0]
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_dot_attention_needs_equal_sizes(write_spec):
    path = write_spec(
        "specc: 1\nname: a\ntask: regression\ninputs: {q: {shape: [time, 4]}, m: {shape: [s, 6]}}\n"
        "model:\n  - {type: attention, from: [q, m]}\n"
    )
    (e,) = errors_of(run_specc("check", path))
    assert "dot-product scores need queries and keys of one size, got 4 and 6" in e["msg"]
