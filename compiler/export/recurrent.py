"""Native ONNX LSTM/GRU/RNN nodes for torch's recurrent layers, while exporting.

A generated model.py runs its `ExportableRNN/LSTM/GRU` layers through torch's scan while
`torch.compiler.is_exporting()`: the contract (see the ExportableRecurrent docstring) is that
forward then calls `self._scan(x, hx, lengths)` with a state that is never None and expects
`(outputs (batch, time, directions * hidden), final state in torch's layout)`. The dynamo
exporter turns that scan into an ONNX `Scan`, whose body ONNX Runtime runs as a small subgraph
per step and layer. ONNX has the three layers as operators of their own, which ONNX Runtime runs
as fused kernels; the exporter of torch 2.13 never emits them.

`native_recurrent(module)` replaces, for the duration of an export, that `_scan` of every such
layer in `module` with a path through three torch custom ops (`specc_onnx::lstm`, `::gru`,
`::rnn`: one ONNX node each, one layer, one or both directions), and `custom_translation_table()`
tells the exporter how each becomes its ONNX operator. model.py itself knows nothing of this:
it stays standalone, and exporting it without specc still gives the Scan. Custom cells
(`CellRecurrent`) are not torch's layers and keep the Scan.

What the exported graph holds, per layer: the input, time-major (ONNX Runtime's CPU kernels
refuse `layout=1`: "Batchwise recurrent operations (layout == 1) are not supported"), weights
already in ONNX's gate order (initializers computed here once, so the file carries no
Slice/Concat on weights), the initial state slice of that layer, and `sequence_lens` (the
lengths clamped to [1, T], int32) when the layer reads lengths. ONNX Runtime then outputs
zeros past each length and returns the state at each length, both directions, which is the
generated code's padding contract.

LSTM and GRU layers always take the native path: it measured faster than the Scan at every
size tried (batch 1-64, hidden 16-128, T 1-512; GRU 1.05-11x, LSTM 1.2-10x, in CPU time). RNN
layers (tanh or relu) become an ONNX `If` between the native RNN node and the layer's own Scan,
on batch * hidden (RNN_NATIVE_LIMIT, see there). `policy("native"|"scan")` overrides the
choice, for tests and comparisons.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import Tensor, nn

# Gate blocks per unit, and ONNX's gate order as indices of torch's blocks:
# LSTM torch (i, f, g, o) -> ONNX (i, o, f, c); GRU torch (r, z, n) -> ONNX (z, r, h).
GATE_ORDER = {
    "LSTM": (0, 3, 1, 2),
    "GRU": (1, 0, 2),
    "RNN_TANH": (0,),
    "RNN_RELU": (0,),
}
ACTIVATION = {"RNN_TANH": "Tanh", "RNN_RELU": "Relu"}
NAMESPACE = "specc_onnx"
WEIGHTS = "onnx_weights_l"  # buffer prefix while exporting: onnx_weights_l{layer}_{w|r|b}


# ---------------------------------------------------------------------------------------------
# Custom ops. Shapes follow ONNX: x (T, B, I) time-major; w (D, G*H, I); r (D, G*H, H);
# b (D, 2*G*H) or None; h0, c0 (D, B, H); lengths (B,) int32 or None.
# Outputs: y (T, D, B, H), h_n (D, B, H)[, c_n (D, B, H)].
# Eager, they compute ONNX's definition in torch (a reference: tests check the weight
# rearrangement against torch's layers with them, without ONNX Runtime).
# ---------------------------------------------------------------------------------------------


def _reference(mode, x, w, r, b, h0, c0, lengths, activation="Tanh"):
    """ONNX's LSTM/GRU/RNN (linear_before_reset=1 for GRU), forward or bidirectional."""
    steps, hidden = x.shape[0], r.shape[-1]
    keep = None
    if lengths is not None:  # (T, B, 1): 1 at real positions
        t = torch.arange(steps, device=x.device)
        keep = (t[:, None] < lengths.to(torch.int64)[None, :]).to(x.dtype)[..., None]
    ys, hs, cs = [], [], []
    for d in range(w.shape[0]):
        wb, rb = b[d].chunk(2) if b is not None else (0, 0)
        gx = x @ w[d].T + wb  # (T, B, G*H): the input half of every gate, all steps
        h, c = h0[d], (c0[d] if c0 is not None else None)
        out = [None] * steps
        for t in range(steps - 1, -1, -1) if d == 1 else range(steps):
            gh = h @ r[d].T + rb
            if mode == "lstm":
                i, o, f, g = (gx[t] + gh).split(hidden, dim=-1)
                c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h_new = torch.sigmoid(o) * torch.tanh(c_new)
            elif mode == "gru":
                xz, xr, xh = gx[t].split(hidden, dim=-1)
                hz, hr, hh = gh.split(hidden, dim=-1)
                z, rr = torch.sigmoid(xz + hz), torch.sigmoid(xr + hr)
                h_new, c_new = (1 - z) * torch.tanh(xh + rr * hh) + z * h, None
            else:
                act = torch.relu if activation == "Relu" else torch.tanh
                h_new, c_new = act(gx[t] + gh), None
            if keep is not None:  # padding keeps the state and outputs zeros
                h_new = keep[t] * h_new + (1 - keep[t]) * h
                if c is not None:
                    c_new = keep[t] * c_new + (1 - keep[t]) * c
            h, c = h_new, c_new
            out[t] = h * keep[t] if keep is not None else h
        ys.append(torch.stack(out))
        hs.append(h)
        cs.append(c)
    y = torch.stack(ys, dim=1)
    return y, torch.stack(hs), (torch.stack(cs) if mode == "lstm" else None)


@torch.library.custom_op(f"{NAMESPACE}::lstm", mutates_args=())
def lstm_op(
    x: Tensor,
    w: Tensor,
    r: Tensor,
    b: Tensor | None,
    h0: Tensor,
    c0: Tensor,
    lengths: Tensor | None,
) -> tuple[Tensor, Tensor, Tensor]:
    y, h, c = _reference("lstm", x, w, r, b, h0, c0, lengths)
    return y, h, c


@torch.library.custom_op(f"{NAMESPACE}::gru", mutates_args=())
def gru_op(
    x: Tensor, w: Tensor, r: Tensor, b: Tensor | None, h0: Tensor, lengths: Tensor | None
) -> tuple[Tensor, Tensor]:
    y, h, _ = _reference("gru", x, w, r, b, h0, None, lengths)
    return y, h


@torch.library.custom_op(f"{NAMESPACE}::rnn", mutates_args=())
def rnn_op(
    x: Tensor,
    w: Tensor,
    r: Tensor,
    b: Tensor | None,
    h0: Tensor,
    lengths: Tensor | None,
    activation: str,
) -> tuple[Tensor, Tensor]:
    y, h, _ = _reference("rnn", x, w, r, b, h0, None, lengths, activation)
    return y, h


def _fake_y(x, r, h0):
    return x.new_empty(x.shape[0], h0.shape[0], x.shape[1], r.shape[-1])


@lstm_op.register_fake
def _(x, w, r, b, h0, c0, lengths):
    return _fake_y(x, r, h0), torch.empty_like(h0), torch.empty_like(c0)


@gru_op.register_fake
def _(x, w, r, b, h0, lengths):
    return _fake_y(x, r, h0), torch.empty_like(h0)


@rnn_op.register_fake
def _(x, w, r, b, h0, lengths, activation):
    return _fake_y(x, r, h0), torch.empty_like(h0)


# ---------------------------------------------------------------------------------------------
# Translations: one ONNX node per custom op (traced onnxscript functions, opset 14+ operators).
# ---------------------------------------------------------------------------------------------


def _direction(w) -> str:
    return "bidirectional" if w.shape[0] == 2 else "forward"


def _lstm_onnx(x, w, r, b, h0, c0, lengths):
    from onnxscript import opset20 as op

    return op.LSTM(x, w, r, b, lengths, h0, c0, hidden_size=r.shape[-1], direction=_direction(w))


def _gru_onnx(x, w, r, b, h0, lengths):
    from onnxscript import opset20 as op

    return op.GRU(
        x,
        w,
        r,
        b,
        lengths,
        h0,
        hidden_size=r.shape[-1],
        direction=_direction(w),
        linear_before_reset=1,
    )


def _rnn_onnx(x, w, r, b, h0, lengths, activation: str):
    from onnxscript import opset20 as op

    directions = w.shape[0]
    return op.RNN(
        x,
        w,
        r,
        b,
        lengths,
        h0,
        hidden_size=r.shape[-1],
        direction=_direction(w),
        activations=[activation] * directions,
    )


def custom_translation_table() -> dict:
    """For torch.onnx.export(..., dynamo=True, custom_translation_table=...)."""
    return {
        torch.ops.specc_onnx.lstm.default: _lstm_onnx,
        torch.ops.specc_onnx.gru.default: _gru_onnx,
        torch.ops.specc_onnx.rnn.default: _rnn_onnx,
    }


# ---------------------------------------------------------------------------------------------
# Weights in ONNX's layout, and the export path that replaces a layer's `_scan`.
# ---------------------------------------------------------------------------------------------


def onnx_weights(layer: nn.RNNBase, index: int) -> tuple[Tensor, Tensor, Tensor | None]:
    """One stacked layer's (W, R, B) in ONNX's layout and gate order, directions stacked:
    W (D, G*H, I), R (D, G*H, H), B (D, 2*G*H) = [Wb, Rb] (None without biases)."""
    order = GATE_ORDER[layer.mode]

    def gates(t: Tensor) -> Tensor:
        return torch.cat([t.chunk(len(order))[k] for k in order])

    ws, rs, bs = [], [], []
    for reverse in (False, True) if layer.bidirectional else (False,):
        suffix = f"_l{index}" + ("_reverse" if reverse else "")
        ws.append(gates(getattr(layer, "weight_ih" + suffix)))
        rs.append(gates(getattr(layer, "weight_hh" + suffix)))
        if layer.bias:
            b_ih, b_hh = getattr(layer, "bias_ih" + suffix), getattr(layer, "bias_hh" + suffix)
            bs.append(torch.cat([gates(b_ih), gates(b_hh)]))
    b = torch.stack(bs) if bs else None
    return torch.stack(ws), torch.stack(rs), b


def supported(module: nn.Module) -> bool:
    """A generated Exportable layer that one ONNX operator per stacked layer can run."""
    return (
        isinstance(module, nn.RNNBase)
        and module.batch_first
        and callable(getattr(type(module), "_scan", None))
        and module.mode in GATE_ORDER
        and getattr(module, "proj_size", 0) == 0
    )


def native_path(layer: nn.RNNBase, x: Tensor, hx, lengths: Tensor | None):
    """What `_scan` returns, through one native ONNX node per stacked layer.

    x (B, T, I) batch-first; hx the full initial state in torch's layout, h or (h, c), each
    (layers * directions, B, H); lengths (B,) or None. Returns (outputs (B, T, D*H), state)."""
    lstm = layer.mode == "LSTM"
    h_all, c_all = hx if lstm else (hx, None)
    d = 2 if layer.bidirectional else 1
    seq_lens = None
    if lengths is not None:
        seq_lens = lengths.clamp(1, x.shape[1]).to(torch.int32)
    y = x.transpose(0, 1)  # (T, B, I): ONNX Runtime runs these operators time-major only
    hs, cs = [], []
    for k in range(layer.num_layers):
        w, r = getattr(layer, f"{WEIGHTS}{k}_w"), getattr(layer, f"{WEIGHTS}{k}_r")
        b = getattr(layer, f"{WEIGHTS}{k}_b", None)
        h0 = h_all[k * d : (k + 1) * d]
        if lstm:
            out, h, c = lstm_op(y, w, r, b, h0, c_all[k * d : (k + 1) * d], seq_lens)
            cs.append(c)
        elif layer.mode == "GRU":
            out, h = gru_op(y, w, r, b, h0, seq_lens)
        else:
            out, h = rnn_op(y, w, r, b, h0, seq_lens, ACTIVATION[layer.mode])
        hs.append(h)
        # (T, D, B, H) -> (T, B, D*H), the next layer's input
        y = out.squeeze(1) if d == 1 else out.permute(0, 2, 1, 3).flatten(2)
    h_n = torch.cat(hs) if len(hs) > 1 else hs[0]
    state = (h_n, torch.cat(cs) if len(cs) > 1 else cs[0]) if lstm else h_n
    return y.transpose(0, 1), state


# ONNX Runtime's CPU kernel for the plain RNN (Elman) operator applies its activation one element
# at a time, through a std::function call per element (onnxruntime/core/providers/cpu/rnn/rnn.cc),
# where LSTM and GRU use vectorized kernels. Against the Scan (T=30, one thread, CPU time; see
# docs/benchmarks.md) it is 1.5-4.4x faster at batch 1 and up to 3.7x slower at batch 64 (tanh).
# Break-even, measured over hidden sizes 16-128 and batches 1-64: batch * hidden about 256 for
# tanh and 512-1024 for relu. An RNN layer therefore exports as an ONNX If on that
# product, the native node below the limit and the Scan above it: one If, about 3 us per call.
RNN_NATIVE_LIMIT = {"RNN_TANH": 256, "RNN_RELU": 512}  # batch * hidden_size
POLICIES = ("auto", "native", "scan")
_policy = "auto"


@contextlib.contextmanager
def policy(name: str) -> Iterator[None]:
    """Inside, exports use `name` for every layer: "auto" (the default: native LSTM and GRU, RNN
    native below RNN_NATIVE_LIMIT), "native" (always the node) or "scan" (switch nothing)."""
    global _policy
    if name not in POLICIES:
        raise ValueError(f"policy is one of {POLICIES}, not {name!r}")
    before, _policy = _policy, name
    try:
        yield
    finally:
        _policy = before


@contextlib.contextmanager
def native_recurrent(module: nn.Module) -> Iterator[list[str]]:
    """While inside, every supported recurrent layer of `module` exports as native ONNX
    LSTM/GRU/RNN nodes (pass custom_translation_table() to the exporter). Yields the names of
    the layers it switched. Everything is put back on exit: the layers' `_scan` and the
    temporary buffers holding the weights in ONNX's layout."""
    switched: list[tuple[str, nn.RNNBase, list[str]]] = []
    try:
        for name, layer in module.named_modules() if _policy != "scan" else ():
            if not supported(layer):
                continue
            added = []
            with torch.no_grad():
                for k in range(layer.num_layers):
                    for part, value in zip("wrb", onnx_weights(layer, k), strict=True):
                        if value is not None:
                            key = f"{WEIGHTS}{k}_{part}"
                            layer.register_buffer(key, value.detach().clone(), persistent=False)
                            added.append(key)
            layer._scan = _bound(layer, _policy)
            switched.append((name, layer, added))
        yield [name for name, _, _ in switched]
    finally:
        for _, layer, added in switched:
            layer.__dict__.pop("_scan", None)
            for key in added:
                delattr(layer, key)


def _bound(layer: nn.RNNBase, how: str):
    """The replacement for layer._scan: the native path, or for an RNN layer under "auto" an
    ONNX If (torch.cond) between the native path and the layer's own Scan."""
    limit = RNN_NATIVE_LIMIT.get(layer.mode) if how == "auto" else None
    own_scan = type(layer)._scan.__get__(layer)

    def _scan(x, hx, lengths):
        if limit is None:
            return native_path(layer, x, hx, lengths)
        operands = (x, hx) if lengths is None else (x, hx, lengths)

        # The branches give the outputs time-major, as both compute them, and the transpose to
        # batch-first comes after the If: when the caller uses only the final state, the
        # optimizer then drops it (it cannot prune an unused output of an If). torch.cond wants
        # both branches' outputs laid out alike: contiguous() (ONNX has no strides).
        def native(x, hx, *lengths):
            y, h = native_path(layer, x, hx, lengths[0] if lengths else None)
            return y.transpose(0, 1).contiguous(), h.contiguous()

        def scan(x, hx, *lengths):
            y, h = own_scan(x, hx, lengths[0] if lengths else None)
            return y.transpose(0, 1).contiguous(), h.contiguous()

        y, h = torch.cond(x.shape[0] * layer.hidden_size <= limit, native, scan, operands)
        return y.transpose(0, 1), h

    return _scan
