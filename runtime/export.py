"""Export a generated model to ONNX and prove ONNX Runtime computes what PyTorch computes.

Uses torch (import this module explicitly; `specc.runtime` itself never imports torch).
The export uses the dynamo exporter with dynamic axes from the spec (batch plus named dims),
stamps specc metadata into the file, runs onnx's full checker, and then the parity gate runs
ONNX Runtime and PyTorch side by side at batch sizes other than the export example's.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import logging
import sys
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import torch

from .errors import SpeccRuntimeError

OTHER_DYNAMIC_SIZE = 11  # a named dim's size in parity runs (the export example uses 8)


class ExportError(SpeccRuntimeError):
    """The model could not be exported, or ONNX Runtime disagreed with PyTorch."""


def load_generated(model_dir: Path, file: str = "model.py"):
    """Import a generated model.py (or train.py) from its folder under a private module name."""
    path = Path(model_dir) / file
    sys.modules.pop("model", None)  # train.py imports its sibling model.py by that name
    name = f"specc_generated_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def instantiate(model_dir: Path, checkpoint: Path | None = None) -> torch.nn.Module:
    module = load_generated(model_dir)
    model = module.Model()
    if checkpoint is not None:
        state = load_checkpoint(checkpoint)
        model.load_state_dict(state["model"])
    return model.eval()


def load_checkpoint(path: Path) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ExportError(f"no checkpoint at {path}") from None
    except Exception as e:
        raise ExportError(
            f"checkpoint {path} is corrupt or not a specc checkpoint ({type(e).__name__})"
        ) from None
    if not isinstance(state, dict) or "model" not in state:
        raise ExportError(f"checkpoint {path} holds no model weights")
    return state


def example_feeds(ir, batch: int, dynamic_size: int, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for inp in ir.inputs:
        shape = [batch] + [d if isinstance(d, int) else dynamic_size for d in inp.dims[1:]]
        if inp.dtype == "int64" and len(shape) == 1:  # lengths: 1..dynamic_size
            out[inp.name] = torch.randint(1, dynamic_size + 1, shape, generator=g)
        elif inp.dtype == "int64":
            out[inp.name] = torch.randint(0, 2, shape, generator=g)
        else:
            out[inp.name] = torch.randn(shape, generator=g)
    return out


def named_dims(names) -> dict:
    """One torch.export.Dim per named dynamic dim (the same object wherever the name appears)."""
    return {name: torch.export.Dim(name, min=1, max=1 << 20) for name in names}


def _dynamic_shapes(ir) -> dict:
    dims_of = named_dims(ir.dynamic_dims)
    return {
        inp.var: {axis: dims_of[d] for axis, d in enumerate(inp.dims) if isinstance(d, str)}
        for inp in ir.inputs
    }


@contextlib.contextmanager
def _quiet():
    """The exporter prints progress and warnings; a user sees them only on failure (SPECC_DEBUG)."""
    buf = io.StringIO()
    level = logging.getLogger("torch").level
    logging.getLogger("torch").setLevel(logging.ERROR)
    with (
        warnings.catch_warnings(),
        contextlib.redirect_stdout(buf),
        contextlib.redirect_stderr(buf),
    ):
        warnings.simplefilter("ignore")
        try:
            yield buf
        finally:
            logging.getLogger("torch").setLevel(level)


def _dynamo_export(module, args, inputs, outputs, dynamic_shapes, opset: int, what: str):
    """torch.onnx.export with the dynamo exporter, quietly; the ONNX proto, or ExportError."""
    from specc.compiler import export_recurrent  # rnn-onnx hook: native ONNX LSTM/GRU/RNN

    try:
        with _quiet(), export_recurrent.native_recurrent(module):  # rnn-onnx hook
            program = torch.onnx.export(
                module,
                args,
                dynamo=True,
                custom_translation_table=export_recurrent.custom_translation_table(),  # rnn-onnx hook
                opset_version=opset,
                input_names=inputs,
                output_names=outputs,
                dynamic_shapes=dynamic_shapes,
                external_data=False,
                verbose=False,
                optimize=True,
            )
    except Exception as e:
        raise ExportError(f"torch.onnx.export{what} failed: {_short(e)}") from e
    return program.model_proto


def export(
    model: torch.nn.Module,
    ir,
    path: Path,
    opset: int = 20,
    labels: list[str] | None = None,
    vocab: str | None = None,
) -> Path:
    """torch -> single-file ONNX with dynamic axes and specc metadata; raises ExportError."""
    model = model.eval()
    feeds = example_feeds(ir, ir.example_batch, 8, seed=0)
    args = tuple(feeds[i.name] for i in ir.inputs)
    names = [i.name for i in ir.inputs]
    proto = _dynamo_export(model, args, names, [ir.output_name], _dynamic_shapes(ir), opset, "")
    _stamp(proto, ir, labels, vocab)
    _declare_output_shape(proto, ir)
    return _save_checked(proto, path)


def _save_checked(proto, path: Path) -> Path:
    """Write atomically, after onnx's full checker has passed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    onnx.save_model(proto, tmp)
    try:
        onnx.checker.check_model(str(tmp), full_check=True)
    except Exception as e:
        tmp.unlink(missing_ok=True)
        raise ExportError(f"the exported graph fails onnx.checker: {_short(e)}") from e
    tmp.replace(path)
    return path


def _short(e: Exception) -> str:
    lines = [ln.strip() for ln in str(e).strip().splitlines() if ln.strip()]
    return (lines[0] if lines else type(e).__name__)[:300]


def _declare_output_shape(proto, ir) -> None:
    """The output shape the spec declares, named dims included.

    The exporter can leave the example's sequence length in the declared output of LSTM and GRU
    (which compute any length); the spec knows better. Intermediate shape annotations go too:
    ONNX Runtime infers them again, and a stale one would only earn a warning per run.
    """
    _declare(proto.graph.output[0], ir.output_dims)
    del proto.graph.value_info[:]


def step_feeds(model, ir, batch: int, length: int, seed: int) -> tuple[torch.Tensor, ...]:
    """Token ids and a state (the model's initial state, nudged so it is not all zeros)."""
    g = torch.Generator().manual_seed(seed)
    vocab = ir.num_classes or 2
    tokens = torch.randint(0, vocab, (batch, length), generator=g)
    with torch.no_grad():
        states = [s + 0.1 * torch.randn(s.shape, generator=g) for s in model.initial_state(batch)]
    return (tokens, *states)


def export_step(
    model: torch.nn.Module, ir, path: Path, opset: int = 20, vocab: str | None = None
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
    outputs = [ir.output_name] + [_next(st.name) for st in ir.states]
    proto = _dynamo_export(
        Method(model, "step"),
        step_feeds(model, ir, ir.example_batch, 8, seed=0),
        [first.name] + [st.name for st in ir.states],
        outputs,
        shapes,
        opset,
        " of the step graph",
    )
    meta = {
        "specc.graph": "step",
        "specc.inputs": json.dumps(
            [{"name": first.name, "dims": list(first.dims), "dtype": first.dtype}]
            + [{"name": st.name, "dims": list(st.dims), "dtype": "float32"} for st in ir.states]
        ),
        "specc.outputs": json.dumps(
            [{"name": ir.output_name, "dims": list(ir.output_dims)}]
            + [{"name": _next(st.name), "dims": list(st.dims)} for st in ir.states]
        ),
        "specc.states": json.dumps(
            [{"name": st.name, "output": _next(st.name), "dims": list(st.dims)} for st in ir.states]
        ),
    }
    with torch.no_grad():
        learned = [s.numpy() for s in model.initial_state(1)]
    if any(np.any(s != 0) for s in learned):
        meta["specc.initial_state"] = json.dumps(
            {st.name: s.tolist() for st, s in zip(ir.states, learned, strict=True)}
        )
    _stamp(proto, ir, None, vocab, meta)
    declared = [ir.output_dims] + [st.dims for st in ir.states]
    for out, dims in zip(proto.graph.output, declared, strict=True):
        _declare(out, dims)
    del proto.graph.value_info[:]
    return _save_checked(proto, path)


class Method(torch.nn.Module):
    """One method of a model (step, encode, decode) as a module's forward, for the exporter.
    Its dynamic shapes are one tuple holding each argument's: ((shape, shape, ...),)."""

    def __init__(self, model: torch.nn.Module, method: str):
        super().__init__()
        self.model, self.method = model, method

    def forward(self, *args):
        return getattr(self.model, self.method)(*args)


def export_autoencoder(model: torch.nn.Module, ir, folder: Path, opset: int = 20) -> dict:
    """encoder.onnx (input -> code, or mean and log-variance) and decoder.onnx (code -> input),
    both with a dynamic batch, each checked against PyTorch at batch 1 and 256."""
    import onnxruntime as ort

    ae, model = ir.autoencoder, model.eval()
    first = ir.inputs[0]
    dim = ae.code_dims[1]
    vae = ae.latent_attr is not None
    parts = {
        "encoder": ("encode", first.name, first.dims, ["mean", "log_var"] if vae else ["code"]),
        "decoder": ("decode", "z", ae.code_dims, [ir.output_name]),
    }
    out_dims = {"encoder": [ae.code_dims] * (2 if vae else 1), "decoder": [ir.output_dims]}
    report = {}
    for part, (method, name, dims, outputs) in parts.items():
        batch = torch.export.Dim("batch", min=1, max=1 << 20)

        def example(n, dims=dims, seed=0):
            g = torch.Generator().manual_seed(seed)
            return torch.randn([n, *dims[1:]], generator=g)

        proto = _dynamo_export(
            Method(model, method),
            (example(2),),
            [name],
            outputs,
            (({0: batch},),),
            opset,
            f" of the {part}",
        )
        meta = {
            "specc.graph": part,
            "specc.latent": json.dumps({"dim": dim, "type": "gaussian" if vae else "code"}),
            "specc.inputs": json.dumps([{"name": name, "dims": list(dims), "dtype": "float32"}]),
            "specc.outputs": json.dumps(
                [{"name": o, "dims": list(d)} for o, d in zip(outputs, out_dims[part], strict=True)]
            ),
        }
        _stamp(proto, ir, None, extra=meta)
        for out, want in zip(proto.graph.output, out_dims[part], strict=True):
            _declare(out, want)
        del proto.graph.value_info[:]
        path = _save_checked(proto, Path(folder) / f"{part}.onnx")
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        diffs = []
        for n in (1, 256):
            x = example(n, seed=10 + n)
            with torch.no_grad():
                want = getattr(model, method)(x)
            want = want if isinstance(want, tuple) else (want,)
            got = session.run(None, {name: x.numpy()})
            diffs.append(
                {
                    "batch": n,
                    "max_abs_diff": max(
                        float(np.max(np.abs(g - w.numpy()))) for g, w in zip(got, want, strict=True)
                    ),
                }
            )
        report[part] = {"path": str(path), "runs": diffs}
    return report


def _next(state_name: str) -> str:
    return "next." + state_name.split(".", 1)[1]


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


def _declare(value_info, dims) -> None:
    shape = value_info.type.tensor_type.shape.dim
    if len(shape) != len(dims):
        return
    for dim, want in zip(shape, dims, strict=True):
        dim.Clear()
        if isinstance(want, int):
            dim.dim_value = want
        else:
            dim.dim_param = str(want)


def _stamp(proto, ir, labels, vocab=None, extra: dict | None = None):
    """specc's metadata; `extra` adds or replaces keys (a step graph's or a half's own)."""
    from specc.compiler import __version__

    meta = {
        "specc.version": __version__,
        "specc.format": "1",  # bump when a runtime could no longer read what export writes
        "specc.spec_name": ir.spec_name,
        "specc.spec_sha256": ir.sha256,
        "specc.task": ir.task,
        "specc.output_kind": ir.output_kind,
        "specc.inputs": json.dumps(
            [{"name": i.name, "dims": list(i.dims), "dtype": i.dtype} for i in ir.inputs]
        ),
        "specc.outputs": json.dumps([{"name": ir.output_name, "dims": list(ir.output_dims)}]),
    }
    if ir.num_classes is not None:
        meta["specc.num_classes"] = str(ir.num_classes)
    if labels:
        meta["specc.labels"] = json.dumps(list(labels))
    if vocab:
        meta["specc.vocab"] = vocab
    meta.update(extra or {})
    del proto.metadata_props[:]
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "specc"
    proto.producer_version = __version__
    proto.doc_string = f"{ir.spec_name} (spec sha256 {ir.sha256})"


@dataclass
class Parity:
    tolerance: float
    runs: list[dict] = field(default_factory=list)

    @property
    def max_abs_diff(self) -> float:
        return max((r["max_abs_diff"] for r in self.runs), default=0.0)

    @property
    def ok(self) -> bool:
        return bool(self.runs) and self.max_abs_diff <= self.tolerance

    def as_dict(self) -> dict:
        return {
            "ok": self.ok,
            "tolerance": self.tolerance,
            "max_abs_diff": self.max_abs_diff,
            "runs": self.runs,
        }


def parity(
    model: torch.nn.Module,
    onnx_path: Path,
    ir,
    batch_sizes,
    tolerance: float,
    real_x: np.ndarray | None = None,
) -> Parity:
    """ONNX Runtime vs PyTorch eval at batch sizes (and named-dim sizes) other than the export example's.

    With data (`real_x`, single-input models) the inputs are real examples, so a model that
    standardizes its inputs is compared where it works; without, seeded random normals.
    """
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    model = model.eval()
    result = Parity(tolerance)
    use_data = real_x is not None and len(real_x) > 0 and len(ir.inputs) == 1
    for k, batch in enumerate(batch_sizes):
        if use_data:
            rows = np.arange(k * batch, (k + 1) * batch) % len(real_x)
            feeds = {ir.inputs[0].name: torch.from_numpy(np.ascontiguousarray(real_x[rows]))}
        else:
            feeds = example_feeds(ir, batch, OTHER_DYNAMIC_SIZE, seed=100 + k)
        with torch.no_grad():
            expected = model(*[feeds[i.name] for i in ir.inputs]).numpy()
        got = session.run(None, {n: t.numpy() for n, t in feeds.items()})[0]
        if got.shape != expected.shape:
            raise ExportError(
                f"ONNX Runtime returned shape {got.shape}, PyTorch {expected.shape} (batch {batch})"
            )
        diff = (
            float(np.max(np.abs(got.astype(np.float64) - expected.astype(np.float64))))
            if expected.size
            else 0.0
        )
        result.runs.append(
            {
                "batch": batch,
                "inputs": "data" if use_data else "random",
                "shape": list(expected.shape),
                "max_abs_diff": diff,
            }
        )
    return result


def localize(model: torch.nn.Module, ir, opset: int) -> str | None:
    """After a failed export/parity: the first layer that fails on its own, as 'name (type): why'."""
    captured: dict[str, tuple] = {}

    def keep_input(attr):
        def hook(module, args, output):
            captured.setdefault(attr, args)  # returns None, so the output is left alone

        return hook

    hooks = [
        getattr(model, n.attr).register_forward_hook(keep_input(n.attr)) for n in ir.nodes if n.attr
    ]
    feeds = example_feeds(ir, ir.example_batch, 8, seed=0)
    try:
        with torch.no_grad():
            model.eval()(*[feeds[i.name] for i in ir.inputs])
    except Exception as e:
        return f"the model fails in PyTorch itself: {_short(e)}"
    finally:
        for h in hooks:
            h.remove()
    import onnxruntime as ort
    from specc.compiler import export_recurrent  # rnn-onnx hook

    for node in ir.nodes:
        if not node.attr or node.attr not in captured:
            continue
        sub, args = getattr(model, node.attr), captured[node.attr]
        try:
            with _quiet(), export_recurrent.native_recurrent(sub):  # rnn-onnx hook
                prog = torch.onnx.export(
                    sub,
                    args,
                    dynamo=True,
                    custom_translation_table=export_recurrent.custom_translation_table(),  # rnn-onnx hook
                    opset_version=opset,
                    external_data=False,
                    verbose=False,
                )
            session = ort.InferenceSession(
                prog.model_proto.SerializeToString(), providers=["CPUExecutionProvider"]
            )
            names = [i.name for i in session.get_inputs()]
            got = session.run(None, {n: a.numpy() for n, a in zip(names, args, strict=False)})[0]
            with torch.no_grad():
                want = sub(*args).numpy()
            if got.shape != want.shape or not np.allclose(got, want, atol=1e-4, rtol=1e-4):
                return (
                    f"layer '{node.name}' ({node.kind}) computes different values in ONNX Runtime"
                )
        except Exception as e:
            return f"layer '{node.name}' ({node.kind}) cannot be exported: {_short(e)}"
    return None
