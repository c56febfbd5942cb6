"""A language model's step graph: (tokens, *state) -> (logits, *next state), and its parity."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from specc.runtime.contracts import Meta, next_state

from .graph import Method, declare, dynamo_export, named_dims, save_checked, stamp
from .parity import OTHER_DYNAMIC_SIZE, Parity


def step_feeds(model, ir, batch: int, length: int, seed: int) -> tuple[torch.Tensor, ...]:
    """Token ids and a state (the model's initial state, nudged so it is not all zeros)."""
    g = torch.Generator().manual_seed(seed)
    vocab = ir.num_classes or 2
    tokens = torch.randint(0, vocab, (batch, length), generator=g)
    with torch.no_grad():
        states = [s + 0.1 * torch.randn(s.shape, generator=g) for s in model.initial_state(batch)]
    return (tokens, *states)


def export_step(
    model: torch.nn.Module,
    ir,
    path: Path,
    opset: int = 20,
    vocab: str | None = None,
    max_positions: int | None = None,
) -> Path:
    """A language model's step graph: (tokens, *state) -> (logits, *next state), dynamic batch and time.

    Generation runs the prompt through it once, then one token per call, carrying the state:
    nothing is recomputed. Initial states the model learned go into the metadata.
    """
    model = model.eval()
    first = ir.inputs[0]
    batch, time = named_dims(("batch", str(first.dims[1]))).values()
    states = tuple({st.dims.index("batch"): batch} for st in ir.states)
    shapes = (({0: batch, 1: time}, *states),)  # Method's forward(*args): one tuple of args
    outputs = [ir.output_name] + [next_state(st.name) for st in ir.states]
    proto = dynamo_export(
        Method(model, "step"),
        step_feeds(model, ir, ir.example_batch, 8, seed=0),
        [first.name] + [st.name for st in ir.states],
        outputs,
        shapes,
        opset,
        " of the step graph",
    )
    meta = {
        Meta.GRAPH: "step",
        Meta.INPUTS: json.dumps(
            [{"name": first.name, "dims": list(first.dims), "dtype": first.dtype}]
            + [{"name": st.name, "dims": list(st.dims), "dtype": "float32"} for st in ir.states]
        ),
        Meta.OUTPUTS: json.dumps(
            [{"name": ir.output_name, "dims": list(ir.output_dims)}]
            + [{"name": next_state(st.name), "dims": list(st.dims)} for st in ir.states]
        ),
        Meta.STATES: json.dumps(
            [
                {"name": st.name, "output": next_state(st.name), "dims": list(st.dims)}
                for st in ir.states
            ]
        ),
    }
    if max_positions:  # a learned position table: generation stops at its last row
        meta[Meta.MAX_POSITIONS] = str(max_positions)
    with torch.no_grad():
        learned = [s.numpy() for s in model.initial_state(1)]
    if any(np.any(s != 0) for s in learned):
        meta[Meta.INITIAL_STATE] = json.dumps(
            {st.name: s.tolist() for st, s in zip(ir.states, learned, strict=True)}
        )
    stamp(proto, ir, None, vocab, meta)
    declared = [ir.output_dims] + [st.dims for st in ir.states]
    for out, dims in zip(proto.graph.output, declared, strict=True):
        declare(out, dims)
    del proto.graph.value_info[:]
    return save_checked(proto, path)


def step_parity(model, step_path: Path, ir, tolerance: float) -> Parity:
    """The step graph against model.step at other sizes, and chained: a sequence fed in two
    parts, the state passed between them, must give what forward() gives for the whole."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(step_path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    result = Parity(tolerance)
    model = model.eval()
    for k, (batch, length) in enumerate(((1, 1), (3, 5), (2, OTHER_DYNAMIC_SIZE))):
        feeds = step_feeds(model, ir, batch, length, seed=200 + k)
        with torch.no_grad():
            want = [t.numpy() for t in model.step(*feeds)]
        got = session.run(None, dict(zip(names, [f.numpy() for f in feeds], strict=True)))
        diff = max(float(np.max(np.abs(g - w))) for g, w in zip(got, want, strict=True))
        result.runs.append(
            {"batch": batch, "time": length, "inputs": "random", "max_abs_diff": diff}
        )
    tokens = step_feeds(model, ir, 2, 12, seed=300)[0]
    with torch.no_grad():
        whole = model(tokens).numpy()
        state = [s.numpy() for s in model.initial_state(2)]
    first = session.run(None, dict(zip(names, [tokens[:, :7].numpy(), *state], strict=True)))
    second = session.run(None, dict(zip(names, [tokens[:, 7:].numpy(), *first[1:]], strict=True)))
    chained = np.concatenate([first[0], second[0]], axis=1)
    diff = float(np.max(np.abs(chained - whole)))
    result.runs.append({"batch": 2, "time": "7+5", "inputs": "chained", "max_abs_diff": diff})
    return result


def export(job) -> dict:
    """step.onnx, the graph that generates one token at a time, and its parity."""
    from ..diagnostics import UserError

    ir, spec = job.compiled.ir, job.compiled.spec
    vocab = job.data.vocab.to_json() if job.data.vocab is not None else None
    layers = job.compiled.parsed.layers
    tables = [x.max_len for x in layers if x.positional and x.kind == "learned"]
    path = export_step(
        job.model, ir, job.folder / "step.onnx", spec.export.opset, vocab, min(tables, default=None)
    )
    step = step_parity(job.model, path, ir, spec.export.tolerance)
    job.log(
        f"exported {path}; chained and single steps match PyTorch (max abs diff {step.max_abs_diff:.2e})"
    )
    if not step.ok:
        raise UserError(
            f"parity check failed: the step graph differs from PyTorch by {step.max_abs_diff:.3g} > {step.tolerance:g}"
        )
    return {"step_parity": step.as_dict(), "step_onnx": str(path)}
