"""torch -> ONNX with the dynamo exporter: dynamic axes from the spec, specc's metadata stamped,
onnx's full checker, an atomic write. Every graph a task exports goes through here."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import warnings
from pathlib import Path

import onnx
import torch

from specc.runtime.contracts import MODEL_FORMAT, Meta

from .errors import ExportError, short
from .examples import example_feeds
from .recurrent import custom_translation_table, native_recurrent


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
def quiet():
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


def dynamo_export(module, args, inputs, outputs, dynamic_shapes, opset: int, what: str):
    """torch.onnx.export with the dynamo exporter, quietly; the ONNX proto, or ExportError."""
    try:  # torch's RNN/LSTM/GRU become ONNX's own recurrent nodes (recurrent.py)
        with quiet(), native_recurrent(module):
            program = torch.onnx.export(
                module,
                args,
                dynamo=True,
                custom_translation_table=custom_translation_table(),
                opset_version=opset,
                input_names=inputs,
                output_names=outputs,
                dynamic_shapes=dynamic_shapes,
                external_data=False,
                verbose=False,
                optimize=True,
            )
    except Exception as e:
        raise ExportError(f"torch.onnx.export{what} failed: {short(e)}") from e
    return program.model_proto


def export(
    model: torch.nn.Module,
    ir,
    path: Path,
    opset: int = 20,
    labels: list[str] | None = None,
    vocab: str | None = None,
    extra: dict | None = None,
) -> Path:
    """torch -> single-file ONNX with dynamic axes and specc metadata (`extra`: more keys, e.g.
    Meta.PREPROCESS); raises ExportError."""
    model = model.eval()
    feeds = example_feeds(model, ir.example_batch, 8, seed=0)
    args = tuple(feeds[i.name] for i in ir.inputs)
    names = [i.name for i in ir.inputs]
    proto = dynamo_export(model, args, names, [ir.output_name], _dynamic_shapes(ir), opset, "")
    stamp(proto, ir, labels, vocab, extra)
    _declare_output_shape(proto, ir)
    return save_checked(proto, path)


# Node metadata the exporter adds that would tie the file to the machine that built it: Python
# stack traces name absolute paths (the run folder, site-packages).
MACHINE_METADATA = ("pkg.torch.onnx.stack_trace",)


def _scrub(nodes) -> None:
    """Drop MACHINE_METADATA from nodes and the subgraphs they hold (a Scan's body), so that the
    same spec, seed and versions give the same bytes wherever they are built."""
    for node in nodes:
        kept = [p for p in node.metadata_props if p.key not in MACHINE_METADATA]
        del node.metadata_props[:]
        node.metadata_props.extend(kept)
        for attribute in node.attribute:
            for sub in ([attribute.g] if attribute.HasField("g") else []) + list(attribute.graphs):
                _scrub(sub.node)


def save_checked(proto, path: Path) -> Path:
    """Write atomically, after onnx's full checker has passed."""
    _scrub(proto.graph.node)
    for function in proto.functions:
        _scrub(function.node)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    onnx.save_model(proto, tmp)
    try:
        onnx.checker.check_model(str(tmp), full_check=True)
    except Exception as e:
        tmp.unlink(missing_ok=True)
        raise ExportError(f"the exported graph fails onnx.checker: {short(e)}") from e
    tmp.replace(path)
    return path


def _declare_output_shape(proto, ir) -> None:
    """The output shape the spec declares, named dims included.

    The exporter can leave the example's sequence length in the declared output of LSTM and GRU
    (which compute any length); the spec knows better. Intermediate shape annotations go too:
    ONNX Runtime infers them again, and a stale one would only earn a warning per run.
    """
    declare(proto.graph.output[0], ir.output_dims)
    del proto.graph.value_info[:]


class Method(torch.nn.Module):
    """One method of a model (step, encode, decode) as a module's forward, for the exporter.
    Its dynamic shapes are one tuple holding each argument's: ((shape, shape, ...),)."""

    def __init__(self, model: torch.nn.Module, method: str):
        super().__init__()
        self.model, self.method = model, method

    def forward(self, *args):
        return getattr(self.model, self.method)(*args)


def declare(value_info, dims) -> None:
    shape = value_info.type.tensor_type.shape.dim
    if len(shape) != len(dims):
        return
    for dim, want in zip(shape, dims, strict=True):
        dim.Clear()
        if isinstance(want, int):
            dim.dim_value = want
        else:
            dim.dim_param = str(want)


def stamp(proto, ir, labels, vocab=None, extra: dict | None = None):
    """specc's metadata; `extra` adds or replaces keys (a step graph's or a half's own)."""
    from specc.compiler import __version__

    meta = {
        Meta.VERSION: __version__,
        Meta.FORMAT: MODEL_FORMAT,
        Meta.SPEC_NAME: ir.spec_name,
        Meta.SPEC_SHA256: ir.sha256,
        Meta.TASK: ir.task,
        Meta.OUTPUT_KIND: ir.output_kind,
        Meta.INPUTS: json.dumps(
            [{"name": i.name, "dims": list(i.dims), "dtype": i.dtype} for i in ir.inputs]
        ),
        Meta.OUTPUTS: json.dumps([{"name": ir.output_name, "dims": list(ir.output_dims)}]),
    }
    if ir.num_classes is not None:
        meta[Meta.NUM_CLASSES] = str(ir.num_classes)
    if labels:
        meta[Meta.LABELS] = json.dumps(list(labels))
    if vocab:
        meta[Meta.VOCAB] = vocab
    meta.update(extra or {})
    del proto.metadata_props[:]
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "specc"
    proto.producer_version = __version__
    proto.doc_string = f"{ir.spec_name} (spec sha256 {ir.sha256})"
