"""Custom recurrent cells from equations: LSTM and GRU written as equations equal nn.LSTM and
nn.GRU on the same weights; the MUTs of Jozefowicz et al. (2015) check and run; mistakes are
errors at their line and column."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from specc.compiler.cells import check, render
from specc.compiler.diagnostics import SpecError
from specc.compiler.pipeline import compile_file

LSTM = [
    "i = sigmoid(W_ii @ x + b_ii + W_hi @ h + b_hi)",
    "f = sigmoid(W_if @ x + b_if + W_hf @ h + b_hf)",
    "g = tanh(W_ig @ x + b_ig + W_hg @ h + b_hg)",
    "o = sigmoid(W_io @ x + b_io + W_ho @ h + b_ho)",
    "c = f * c + i * g",
    "h = o * tanh(c)",
]
GRU = [
    "r = sigmoid(W_ir @ x + b_ir + W_hr @ h + b_hr)",
    "z = sigmoid(W_iz @ x + b_iz + W_hz @ h + b_hz)",
    "n = tanh(W_in @ x + b_in + r * (W_hn @ h + b_hn))",
    "h = (1 - z) * n + z * h",
]
MUT = {  # Jozefowicz, Zaremba, Sutskever (2015), "An empirical exploration of recurrent network architectures"
    "mut1": [
        "z = sigmoid(W_xz @ x + b_z)",
        "r = sigmoid(W_xr @ x + W_hr @ h + b_r)",
        "h = tanh(W_hh @ (r * h) + tanh(x) + b_h) * z + h * (1 - z)",
    ],
    "mut2": [
        "z = sigmoid(W_xz @ x + W_hz @ h + b_z)",
        "r = sigmoid(x + W_hr @ h + b_r)",
        "h = tanh(W_hh @ (r * h) + W_xh @ x + b_h) * z + h * (1 - z)",
    ],
    "mut3": [
        "z = sigmoid(W_xz @ x + W_hz @ tanh(h) + b_z)",
        "r = sigmoid(W_xr @ x + W_hr @ h + b_r)",
        "h = tanh(W_hh @ (r * h) + W_xh @ x + b_h) * z + h * (1 - z)",
    ],
}


def params_of(equations: list[str]) -> dict:
    """Each W_ is [hidden, input] when it multiplies x, else [hidden, hidden]; each b_ is [hidden]."""
    names = sorted(
        {
            t
            for eq in equations
            for t in eq.replace("(", " ").replace(")", " ").split()
            if t[:2] in ("W_", "b_")
        }
    )
    out = {}
    for n in names:
        if n.startswith("b_"):
            out[n] = ["hidden"]
        else:
            reads_x = any(f"{n} @ x" in eq for eq in equations)
            out[n] = ["hidden", "input" if reads_x else "hidden"]
    return out


def build(name, equations, state, input_size, hidden_size, same_size=False):
    size = "hidden" if same_size else "input"
    cell, errors = check(name, "x", state, params_of(equations), equations, None, size)
    assert not errors, [(i, e.message) for i, e in errors]
    namespace = {"torch": torch, "nn": nn, "F": F}
    exec(compile(render(cell, "Cell"), f"<{name}>", "exec"), namespace)  # our generated source
    return namespace["Cell"](input_size, hidden_size)


def test_lstm_from_equations_equals_nn_lstm():
    torch.manual_seed(0)
    ref = nn.LSTM(5, 4).double()
    cell = build("lstm", LSTM, {"c": "hidden", "h": "hidden"}, 5, 4).double()
    wi, wh = ref.weight_ih_l0.chunk(4), ref.weight_hh_l0.chunk(4)
    bi, bh = ref.bias_ih_l0.chunk(4), ref.bias_hh_l0.chunk(4)
    with torch.no_grad():
        for k, gate in enumerate("ifgo"):
            getattr(cell, f"W_i{gate}").copy_(wi[k])
            getattr(cell, f"W_h{gate}").copy_(wh[k])
            getattr(cell, f"b_i{gate}").copy_(bi[k])
            getattr(cell, f"b_h{gate}").copy_(bh[k])
    xs = torch.randn(7, 3, 5, dtype=torch.float64)
    h0, c0 = torch.randn(1, 3, 4, dtype=torch.float64), torch.randn(1, 3, 4, dtype=torch.float64)
    want, (hn, cn) = ref(xs, (h0, c0))
    state = (c0[0], h0[0])
    outs = []
    for x in xs:
        state = cell(x, state)
        outs.append(state[1])
    torch.testing.assert_close(torch.stack(outs), want, atol=1e-6, rtol=0)
    torch.testing.assert_close(state[0], cn[0], atol=1e-6, rtol=0)


def test_gru_from_equations_equals_nn_gru():
    torch.manual_seed(1)
    ref = nn.GRU(3, 6).double()
    cell = build("gru", GRU, {"h": "hidden"}, 3, 6).double()
    wi, wh = ref.weight_ih_l0.chunk(3), ref.weight_hh_l0.chunk(3)
    bi, bh = ref.bias_ih_l0.chunk(3), ref.bias_hh_l0.chunk(3)
    with torch.no_grad():
        for k, gate in enumerate("rzn"):
            getattr(cell, f"W_i{gate}").copy_(wi[k])
            getattr(cell, f"W_h{gate}").copy_(wh[k])
            getattr(cell, f"b_i{gate}").copy_(bi[k])
            getattr(cell, f"b_h{gate}").copy_(bh[k])
    xs = torch.randn(9, 2, 3, dtype=torch.float64)
    h0 = torch.randn(1, 2, 6, dtype=torch.float64)
    want, _ = ref(xs, h0)
    state, outs = (h0[0],), []
    for x in xs:
        state = cell(x, state)
        outs.append(state[0])
    torch.testing.assert_close(torch.stack(outs), want, atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", MUT)
def test_muts_check_and_step_like_the_paper(name):
    """One step of the rendered cell equals the paper's equations written directly in torch."""
    torch.manual_seed(2)
    same = name in ("mut1", "mut2")  # they add x to hidden-size vectors: input size = hidden size
    cell = build(name, MUT[name], {"h": "hidden"}, 4, 4, same_size=same).double()
    p = dict(cell.named_parameters())
    x, h = torch.randn(5, 4, dtype=torch.float64), torch.randn(5, 4, dtype=torch.float64)
    lin = F.linear
    if name == "mut1":
        z = torch.sigmoid(lin(x, p["W_xz"]) + p["b_z"])
        r = torch.sigmoid(lin(x, p["W_xr"]) + lin(h, p["W_hr"]) + p["b_r"])
        want = torch.tanh(lin(r * h, p["W_hh"]) + torch.tanh(x) + p["b_h"]) * z + h * (1 - z)
    elif name == "mut2":
        z = torch.sigmoid(lin(x, p["W_xz"]) + lin(h, p["W_hz"]) + p["b_z"])
        r = torch.sigmoid(x + lin(h, p["W_hr"]) + p["b_r"])
        want = torch.tanh(lin(r * h, p["W_hh"]) + lin(x, p["W_xh"]) + p["b_h"]) * z + h * (1 - z)
    else:
        z = torch.sigmoid(lin(x, p["W_xz"]) + lin(torch.tanh(h), p["W_hz"]) + p["b_z"])
        r = torch.sigmoid(lin(x, p["W_xr"]) + lin(h, p["W_hr"]) + p["b_r"])
        want = torch.tanh(lin(r * h, p["W_hh"]) + lin(x, p["W_xh"]) + p["b_h"]) * z + h * (1 - z)
    (got,) = cell(x, (h,))
    torch.testing.assert_close(got, want, atol=1e-12, rtol=0)
    # and the gradient flows to every parameter
    got.sum().backward()
    assert all(q.grad is not None and q.grad.abs().sum() > 0 for q in cell.parameters())


def test_mut1_needs_input_size_equal_to_hidden():
    _, errors = check("mut1", "x", {"h": "hidden"}, params_of(MUT["mut1"]), MUT["mut1"], None)
    ((index, e),) = errors
    assert (
        index == 2
        and "a vector of size hidden + a vector of size input: the sizes differ" in e.message
    )
    _, errors = check(
        "mut1", "x", {"h": "hidden"}, params_of(MUT["mut1"]), MUT["mut1"], None, "hidden"
    )
    assert not errors


@pytest.mark.parametrize(
    "equation,col,message",
    [
        ("h = tanh(W @ x + bb)", 17, "'bb' is not defined"),
        (
            "h = tanh(U @ x)",
            11,
            "a [hidden, hidden] matrix @ a vector of size input: the sizes do not match",
        ),
        ("h = tanh(W * x)", 11, "a matrix can only be used with @"),
        ("h = tanhh(W @ x)", 4, "unknown function 'tanhh'"),
        ("h = tanh(W @ x +)", 16, "expected a name, number or '(', found ')'"),
        ("h = tanh(W @ x", 14, "expected ')', found the end of the equation"),
        ("h = tanh(W @ x) $ 2", 16, "unexpected character '$'"),
        ("W = tanh(W @ x)", 0, "cannot assign to the parameter 'W'"),
        ("h = x @ W", 6, "the left side of @ must be a matrix"),
        ("h = W", 4, "would be a [hidden, input] matrix"),
        ("tanh(W @ x)", 4, "expected '=', found '('"),
    ],
)
def test_mistakes_are_errors_at_their_column(equation, col, message):
    params = {"W": ["hidden", "input"], "U": ["hidden", "hidden"], "b": ["hidden"]}
    _, errors = check("c", "x", {"h": "hidden"}, params, [equation], None)
    ((index, e),) = errors
    assert index == 0 and e.col == col and message in e.message, (e.col, e.message)


def test_unknown_name_suggests_and_state_must_be_updated():
    params = {"W": ["hidden", "input"], "bias": ["hidden"]}
    _, errors = check("c", "x", {"h": "hidden"}, params, ["h = tanh(W @ x + bais)"], None)
    assert errors[0][1].hint == "did you mean 'bias'?"
    _, errors = check(
        "c", "x", {"h": "hidden", "c": "hidden"}, params, ["h = tanh(W @ x + bias)"], None
    )
    assert errors[0][0] is None and "state 'c' is never updated" in errors[0][1].message


def test_hostile_names_render_to_safe_code():
    """Names that are Python or torch or nn.Module names still give code that runs."""
    eqs = ["self = sigmoid(forward @ torch + training)", "F = self * torch", "torch = F - nn"]
    params = {"forward": ["hidden", "hidden"], "training": ["hidden"], "nn": ["hidden"]}
    cell, errors = check("evil", "x", {"torch": "hidden"}, params, eqs, None)
    assert not errors, errors
    namespace = {"torch": torch, "nn": nn, "F": F}
    exec(compile(render(cell, "Cell"), "<evil>", "exec"), namespace)
    module = namespace["Cell"](3, 3)
    h = torch.randn(2, 3)
    (out,) = module(torch.randn(2, 3), (h,))
    p = dict(module.named_parameters())
    gate = torch.sigmoid(F.linear(h, p["forward_"]) + p["training_"])
    torch.testing.assert_close(out, gate * h - p["nn_"])
    _, errors = check("clash", "h", {"h": "hidden"}, {}, ["h = h"], None)
    assert "'h' is declared twice" in errors[0][1].message


def test_cells_section_errors_are_located_in_the_spec(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "specc: 1\nname: t\ntask: classification\ninputs: {x: {shape: [4]}}\n"
        "model: [{type: linear, out_features: 2}]\n"
        "cells:\n  bad:\n    state: {h: hidden}\n    params: {W: [hidden, input], b: [hidden]}\n"
        "    equations:\n      - 'g = tanh(W @ h)'\n      - h = tanh(W @ x + bb)\n"
    )
    with pytest.raises(SpecError) as e:
        compile_file(spec)
    found = [(d.pos.line, d.pos.col, d.message) for d in e.value.diagnostics]
    assert any(
        line == 11 and col == 10 + 11 and "sizes do not match" in msg for line, col, msg in found
    )
    assert (12, 9 + 17, "cell 'bad': 'bb' is not defined") in found
