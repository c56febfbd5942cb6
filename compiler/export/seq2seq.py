"""A seq2seq model's ONNX graphs: encoder.onnx (once per source) and step.onnx (once per token).

model.onnx stays the full teacher-forced graph (source, target_in -> logits), for scoring.
The encoder returns the decoder's memories (encoder outputs it attends over) and its first
state; the step graph takes tokens, the memories, the source lengths and a state, and returns
logits and the next state. Recurrent states and transformer key/value caches are plain inputs
and outputs, so any ONNX Runtime program can decode: `specc.runtime.Seq2Seq` does, greedily,
by beam search or by sampling. Uses torch (import explicitly).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from specc.runtime.contracts import BOS, EOS, PAD, Meta, next_state

from .graph import Method, declare, dynamo_export, named_dims, save_checked, stamp
from .parity import Parity


def describe(ir, vocabs: dict, longest: dict) -> dict:
    """What a decoder needs to know about the graphs, stored in both files' metadata."""
    sq = ir.seq2seq
    source = sq.source[0]
    return {
        "source": {"name": source.name, "dims": list(source.dims), "dtype": source.dtype},
        "lengths": sq.source[1].name if len(sq.source) > 1 else None,
        "target": sq.target.name,
        "memories": [{"name": m.name, "dims": list(m.dims)} for m in sq.memories],
        "step_inputs": [i.name for i in sq.step_inputs],
        "states": [
            {
                "name": st.name,
                "output": next_state(st.name),
                "dims": list(st.dims),
                "batch_axis": list(st.dims).index("batch"),
            }
            for st in ir.states
        ],
        "logits": ir.output_name,
        "special": {"pad": PAD, "bos": BOS, "eos": EOS},
        # The default cap on written tokens: twice the longest target seen, but never more than
        # the decoder's learned position table can place (a model that never writes <eos>
        # stops there instead of running off the table).
        "max_len": min(int(longest["target"]) * 2 + 2, longest.get("target_table") or 1 << 30),
        "max_source_len": longest.get("source_table"),  # a learned position table's rows
        "max_target_len": longest.get("target_table"),  # tokens the decoder can place at most
        "source_vocab": vocabs["source"].to_json() if vocabs.get("source") else None,
        "target_vocab": vocabs["target"].to_json(),
    }


def export(model, ir, folder: Path, opset: int, info: dict) -> dict:
    """Write encoder.onnx and step.onnx; return their paths."""
    sq, model = ir.seq2seq, model.eval()
    folder = Path(folder)
    source_feeds = example_source(ir, 2, 6, seed=0)
    source_dims = named_dims({d for i in sq.source for d in i.dims if isinstance(d, str)})
    source_shapes = tuple(
        {a: source_dims[d] for a, d in enumerate(i.dims) if isinstance(d, str)} for i in sq.source
    )
    enc_outputs = [m.name for m in sq.memories] + [st.name for st in ir.states]
    meta = {Meta.SEQ2SEQ: json.dumps(info)}
    proto = dynamo_export(
        Method(model, "encode"),
        source_feeds,
        [i.name for i in sq.source],
        enc_outputs,
        (source_shapes,),
        opset,
        " of the encoder",
    )
    stamp(proto, ir, None, extra={Meta.GRAPH: "encoder", **meta})
    for out, want in zip(
        proto.graph.output,
        [m.dims for m in sq.memories] + [st.dims for st in ir.states],
        strict=True,
    ):
        declare(out, _past_zero(want))
    del proto.graph.value_info[:]
    encoder = save_checked(proto, folder / "encoder.onnx")

    feeds = step_example(model, ir, source_feeds, steps=3, seed=1)
    all_dims = named_dims(
        {
            d
            for x in (*sq.memories, *ir.states, sq.target, *sq.step_inputs)
            for d in x.dims
            if isinstance(d, str)
        }
    )
    if "past" in all_dims:  # an empty cache (0 positions) starts decoding
        all_dims["past"] = torch.export.Dim("past", min=0, max=1 << 20)

    def shape_of(dims_list):
        return {a: all_dims[d] for a, d in enumerate(dims_list) if isinstance(d, str)}

    rest = (
        [m.dims for m in sq.memories]
        + [i.dims for i in sq.step_inputs]
        + [st.dims for st in ir.states]
    )
    proto = dynamo_export(
        Method(model, "step"),
        feeds,
        step_input_names(ir),
        [ir.output_name] + [next_state(st.name) for st in ir.states],
        ((shape_of(sq.target.dims), *(shape_of(d) for d in rest)),),
        opset,
        " of the decoder step",
    )
    limit = {Meta.MAX_POSITIONS: str(info["max_target_len"])} if info["max_target_len"] else {}
    stamp(proto, ir, None, extra={Meta.GRAPH: "step", **meta, **limit})
    for out, want in zip(
        proto.graph.output, [ir.output_dims] + [st.dims for st in ir.states], strict=True
    ):
        declare(out, want)
    del proto.graph.value_info[:]
    step = save_checked(proto, folder / "step.onnx")
    return {"encoder": encoder, "step": step}


def _past_zero(dims) -> list:
    """The encoder's caches hold no positions yet."""
    return [0 if d == "past" else d for d in dims]


def step_input_names(ir) -> list[str]:
    sq = ir.seq2seq
    return (
        [sq.target.name]
        + [m.name for m in sq.memories]
        + [i.name for i in sq.step_inputs]
        + [st.name for st in ir.states]
    )


def example_source(ir, batch: int, length: int, seed: int) -> tuple[torch.Tensor, ...]:
    """Source ids from the real vocabulary range (or images) and lengths from 1 to `length`."""
    g = torch.Generator().manual_seed(seed)
    sq = ir.seq2seq
    source = sq.source[0]
    if source.dtype == "int64":
        ids = torch.randint(4, 6, (batch, length), generator=g)
        lengths = torch.randint(1, length + 1, (batch,), generator=g)
        lengths[0] = length  # the longest fills the padded width
        return (ids, lengths)
    shape = [batch] + [d if isinstance(d, int) else length for d in source.dims[1:]]
    return (torch.randn(shape, generator=g),)


def step_example(model, ir, source, steps: int, seed: int) -> tuple[torch.Tensor, ...]:
    """A step's inputs after `steps` tokens have been decoded (so a cache is not empty)."""
    sq = ir.seq2seq
    g = torch.Generator().manual_seed(seed)
    batch = source[0].shape[0]
    with torch.no_grad():
        start = model.encode(*source)
        memories, state = start[: len(sq.memories)], start[len(sq.memories) :]
        lengths = [source[1]] if sq.step_inputs else []
        first = torch.randint(4, 6, (batch, steps), generator=g)
        _, *state = model.step(first, *memories, *lengths, *state)
    tokens = torch.randint(4, 6, (batch, steps), generator=g)
    return (tokens, *memories, *lengths, *state)


def parity(model, ir, paths: dict, tolerance: float, source: tuple | None = None) -> Parity:
    """encoder.onnx and step.onnx against encode() and step() at other batch sizes and lengths,
    and whole greedy decodes: ONNX Runtime's tokens must equal model.greedy's."""
    from specc.runtime.translate import Seq2Seq

    runner = Seq2Seq(Path(paths["step"]).parent, device="cpu")  # its sessions serve every check
    encoder, step = runner.encoder.session, runner.stepper.session
    sq, model, result = ir.seq2seq, model.eval(), Parity(tolerance)
    for k, (batch, length) in enumerate(((1, 3), (5, 9))):
        feeds = example_source(ir, batch, length, seed=50 + k)
        with torch.no_grad():
            want = [t.numpy() for t in model.encode(*feeds)]
        got = encoder.run(None, {i.name: f.numpy() for i, f in zip(sq.source, feeds, strict=True)})
        result.runs.append(
            {"graph": "encoder", "batch": batch, "time": length, "max_abs_diff": _diff(got, want)}
        )
        inputs = step_example(model, ir, feeds, steps=1 + k, seed=60 + k)
        with torch.no_grad():
            want = [t.numpy() for t in model.step(*inputs)]
        got = step.run(
            None, dict(zip(step_input_names(ir), [t.numpy() for t in inputs], strict=True))
        )
        result.runs.append(
            {"graph": "step", "batch": batch, "steps": 1 + k, "max_abs_diff": _diff(got, want)}
        )
    if source is not None:  # real sources: greedy decoding, token for token
        tensors = tuple(torch.from_numpy(np.ascontiguousarray(s)) for s in source)
        with torch.no_grad():
            want = model.greedy(*tensors, max_len=runner.max_len).numpy()
        got = runner.decode(*source, method="greedy")
        mismatched = sum(
            list(g) != _trim(w, runner.eos, runner.pad) for g, w in zip(got, want, strict=True)
        )
        result.runs.append(
            {
                "graph": "greedy decode",
                "batch": len(want),
                "mismatched_sequences": mismatched,
                "max_abs_diff": float(mismatched),
            }
        )
    return result


def _trim(row, eos: int, pad: int) -> list[int]:
    """A greedy row up to (not including) its <eos>."""
    out = []
    for t in row.tolist():
        if t in (eos, pad):
            break
        out.append(t)
    return out


def _diff(got, want) -> float:
    return max(
        float(np.max(np.abs(g.astype(np.float64) - w.astype(np.float64)))) if w.size else 0.0
        for g, w in zip(got, want, strict=True)
    )


def export_graphs(job) -> dict:
    """encoder.onnx and step.onnx, checked against encode()/step() and by decoding the test
    split (or the first 256 examples) greedily through both: the tokens must be identical."""
    from ..diagnostics import UserError

    compiled, ds = job.compiled, job.data
    spec, parsed, pairs = compiled.spec, compiled.parsed, compiled.text
    tables = {"encoder": [], "decoder": []}  # the rows of learned position tables, by section
    for i, layer in enumerate(parsed.layers):
        if layer.positional and layer.kind == "learned":
            tables[parsed.section(i)].append(layer.max_len)
    longest = {
        "target": pairs.longest_target,
        "source_table": min(tables["encoder"], default=None),
        "target_table": min(tables["decoder"], default=None),
    }
    info = describe(compiled.ir, ds.vocabs, longest)
    paths = export(job.model, compiled.ir, job.folder, spec.export.opset, info)
    rows = np.arange(min(256, len(ds.x)))
    source = (ds.x[rows],) + ((ds.more[0][rows],) if len(compiled.ir.seq2seq.source) > 1 else ())
    par = parity(job.model, compiled.ir, paths, spec.export.tolerance, source)
    worst = max(r["max_abs_diff"] for r in par.runs if "mismatched_sequences" not in r)
    mismatched = next(r["mismatched_sequences"] for r in par.runs if "mismatched_sequences" in r)
    job.log(
        f"exported encoder.onnx and step.onnx; ONNX Runtime vs PyTorch max abs diff {worst:.2e}; "
        f"greedy decoding of {len(rows)} sources: {mismatched} sequence(s) differ"
    )
    if worst > spec.export.tolerance or mismatched:
        raise UserError(
            f"parity check failed: the seq2seq graphs differ from PyTorch (max abs diff {worst:.3g}, "
            f"{mismatched} greedy decode(s) differ)"
        )
    return {
        "parts": {
            "encoder": str(paths["encoder"]),
            "step": str(paths["step"]),
            "parity": par.as_dict(),
        }
    }
