"""FLOPs per example from the spec alone (compiler/flops.py, each layer's `flops`), against
torch's own FLOP counter on the generated model and against the textbook formula for an LSTM."""

from __future__ import annotations

import json

import torch
from helpers import SPECS, run_specc
from torch.utils.flop_counter import FlopCounterMode

from specc.compiler import codegen
from specc.compiler import export as ex
from specc.compiler.flops import concrete, layer_flops
from specc.compiler.pipeline import compile_file


def _torch_flops(model, *inputs) -> int:
    """Matrix products and convolutions, as torch counts them (2 per multiply-add)."""
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.eval()(*inputs)
    return counter.get_total_flops()


def test_convolutions_and_linear_layers_count_what_torch_counts(tmp_path):
    compiled = compile_file(SPECS / "lenet5.yaml")
    codegen.write(compiled, tmp_path)
    model = ex.instantiate(tmp_path)
    ours = layer_flops(compiled.parsed, compiled.inferred, {})
    parsed, inferred = compiled.parsed, compiled.inferred
    products = 0
    for i, n in ours.items():
        layer = parsed.layers[i]
        if layer.type in ("conv2d", "linear"):
            out = inferred.out_shapes[layer.name]
            bias_adds = (
                int(torch.tensor(out).prod()) if layer.bias else 0
            )  # torch counts products only
            products += n - bias_adds
    assert products == _torch_flops(model, torch.zeros(1, 1, 28, 28))


def test_attention_counts_what_torch_counts(write_spec, tmp_path):
    spec = write_spec(
        "specc: 1\nname: a\ntask: regression\ninputs: {q: {shape: [time, 16]}, m: {shape: [memory, 8]}}\n"
        "model:\n  - {type: multihead_attention, num_heads: 4, from: [q, m], bias: false}\n"
    )
    compiled = compile_file(spec)
    codegen.write(compiled, tmp_path)
    model = ex.instantiate(tmp_path)
    ours = layer_flops(compiled.parsed, compiled.inferred, {"time": 7, "memory": 11})
    assert sum(ours.values()) == _torch_flops(model, torch.zeros(1, 7, 16), torch.zeros(1, 11, 8))


def test_an_lstm_costs_what_the_textbook_says(tmp_path):
    """Per step, layer and direction: 4 gates of (W x + b) + (U h + b), 2 per multiply-add."""
    compiled = compile_file(SPECS / "char_lm.yaml")
    ours = layer_flops(compiled.parsed, compiled.inferred, {"time": 64})
    (lstm,) = [i for i in ours if compiled.parsed.layers[i].type == "lstm"]
    layer = compiled.parsed.layers[lstm]
    h, emb = (
        layer.hidden_size,
        next(x.embedding_dim for x in compiled.parsed.layers if x.type == "embedding"),
    )
    assert (h, layer.num_layers) == (128, 2)
    per_step = sum(4 * h * (2 * (width + h) + 2) for width in (emb, h))  # two stacked layers
    assert ours[lstm] == 64 * per_step


def test_dimension_expressions_take_the_sizes_given():
    assert concrete("(time - 2) // 1 + 1", {"time": 10}) == 9
    assert concrete("2*time", {}) == 2  # an unsized dim takes 1


def test_check_reports_flops_per_layer_and_in_total():
    proc = run_specc("check", SPECS / "char_lm.yaml", "--json", "--dim", "time=64")
    doc = json.loads(proc.stdout)
    assert doc["flops"]["dims"] == {"time": 64}
    assert doc["flops"]["per_example"] == sum(r["flops"] for r in doc["layers"]) > 0
    proc = run_specc("check", SPECS / "char_lm.yaml", "--dim", "time=zero")
    assert proc.returncode == 1 and "NAME=SIZE" in proc.stderr
