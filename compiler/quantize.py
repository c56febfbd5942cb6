"""`specc export DIR --quantize int8`: dynamic int8 quantization with an accuracy guard.

ONNX Runtime's pre-processing (symbolic shape inference and graph clean-up) runs first, then
dynamic quantization of the weights of MatMul/Gemm to int8 (activations are quantized on the
fly). Convolutions stay float: ONNX Runtime's CPU ConvInteger kernel measured 2-4x slower than
its float convolution here (docs/benchmarks.md), while the linear layers hold most weights. The int8 model is compared with the float model through ONNX Runtime on the run's
validation split; when accuracy drops more than `max_drop` points (classifiers) or the error
grows more than `max_increase` percent (regression), it is refused, unless `allow_drop` says to
keep it with a warning. Nothing is written when it is refused.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path

import numpy as np

from specc.runtime.contracts import Meta

from .diagnostics import UserError
from .evaluate import evaluate
from .files import atomic_write

INT8_OPS = ["MatMul", "Gemm"]


def int8_model(source: Path, target: Path) -> None:
    """The recipe alone: pre-processing, then dynamic int8 weights of MatMul/Gemm."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    logging.getLogger().setLevel(logging.ERROR)  # the quantizer logs advice per node
    pre = target.with_name(target.stem + ".pre.onnx")
    quant_pre_process(str(source), str(pre))
    quantize_dynamic(
        str(pre), str(target), weight_type=QuantType.QInt8, op_types_to_quantize=INT8_OPS
    )
    pre.unlink(missing_ok=True)


def quantize(
    run: Path,
    max_drop: float = 0.5,
    max_increase: float = 5.0,
    allow_drop: bool = False,
    log=print,
) -> dict:
    import onnx

    run = Path(run)
    source = run / "model.onnx"
    if not source.is_file():
        raise UserError(f"no model to quantize: {source} does not exist (run `specc train` first)")
    target = run / "model.int8.onnx"
    with tempfile.TemporaryDirectory() as tmp:
        quantized = Path(tmp) / "int8.onnx"
        int8_model(source, quantized)
        proto = onnx.load(str(quantized))
        meta = {
            p.key: p.value for p in onnx.load(str(source), load_external_data=False).metadata_props
        }
        meta[Meta.QUANTIZED] = "int8"
        del proto.metadata_props[:]
        for key, value in meta.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.save(proto, str(quantized))
        fp = evaluate(run, "val", device="cpu", model_file=source, keep_outputs=True)
        q = evaluate(run, "val", device="cpu", model_file=quantized, keep_outputs=True)
        diff = float(np.max(np.abs(fp.pop("outputs") - q.pop("outputs"))))
        figures = {
            "examples": fp["examples"],
            "float": fp["metrics"],
            "int8": q["metrics"],
            "max_abs_diff": diff,
            "bytes": {"float": source.stat().st_size, "int8": quantized.stat().st_size},
        }
        if "accuracy" in fp["metrics"]:
            change = 100 * (fp["metrics"]["accuracy"] - q["metrics"]["accuracy"])
            figures["accuracy_drop_points"] = change
            verdict = change <= max_drop
            shown = (
                f"validation accuracy {fp['metrics']['accuracy']:.4f} -> {q['metrics']['accuracy']:.4f} "
                f"({-change:+.2f} points; a drop of at most {max_drop} is allowed)"
            )
        else:
            key = "mae" if "mae" in fp["metrics"] else "loss"
            change = 100 * (q["metrics"][key] / max(fp["metrics"][key], 1e-12) - 1)
            figures["error_increase_percent"] = change
            verdict = change <= max_increase
            shown = (
                f"validation {key} {fp['metrics'][key]:.4g} -> {q['metrics'][key]:.4g} "
                f"({change:+.1f}%, limit {max_increase}%)"
            )
        figures["accepted"] = verdict
        if not verdict and not allow_drop:
            raise UserError(
                f"int8 model refused: {shown}; nothing written (pass --allow-drop to keep it anyway)"
            )
        os.replace(quantized, target)
    if not verdict:
        log(f"warning: keeping the int8 model although {shown}")
    atomic_write(run / "quantization.json", json.dumps(figures, indent=2) + "\n")
    log(
        f"wrote {target} ({figures['bytes']['int8']:,} bytes, float {figures['bytes']['float']:,}): {shown}; "
        f"max |int8 - float| on validation outputs {diff:.3g}"
    )
    return figures
