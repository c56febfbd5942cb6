"""An autoencoder's halves: encoder.onnx (input -> code) and decoder.onnx (code -> input)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from specc.runtime.contracts import Meta

from .graph import Method, declare, dynamo_export, save_checked, stamp


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

        proto = dynamo_export(
            Method(model, method),
            (example(2),),
            [name],
            outputs,
            (({0: batch},),),
            opset,
            f" of the {part}",
        )
        meta = {
            Meta.GRAPH: part,
            Meta.LATENT: json.dumps({"dim": dim, "type": "gaussian" if vae else "code"}),
            Meta.INPUTS: json.dumps([{"name": name, "dims": list(dims), "dtype": "float32"}]),
            Meta.OUTPUTS: json.dumps(
                [{"name": o, "dims": list(d)} for o, d in zip(outputs, out_dims[part], strict=True)]
            ),
        }
        stamp(proto, ir, None, extra=meta)
        for out, want in zip(proto.graph.output, out_dims[part], strict=True):
            declare(out, want)
        del proto.graph.value_info[:]
        path = save_checked(proto, Path(folder) / f"{part}.onnx")
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


def export(job) -> dict:
    """encoder.onnx and decoder.onnx: the halves an application uses to encode, decode, sample."""
    from ..diagnostics import UserError

    spec = job.compiled.spec
    parts = export_autoencoder(job.model, job.compiled.ir, job.folder, spec.export.opset)
    worst = max(r["max_abs_diff"] for p in parts.values() for r in p["runs"])
    job.log(
        f"exported encoder.onnx and decoder.onnx; ONNX Runtime vs PyTorch max abs diff {worst:.2e}"
    )
    if worst > spec.export.tolerance:
        raise UserError(
            f"parity check failed: an autoencoder half differs from PyTorch by {worst:.3g} > {spec.export.tolerance:g}"
        )
    return {"parts": parts}
