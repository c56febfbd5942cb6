"""The parity gate: ONNX Runtime against PyTorch on shapes other than the export example's."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .errors import ExportError, short
from .examples import example_feeds
from .graph import dynamo_export

OTHER_DYNAMIC_SIZE = 11  # a named dim's size in parity runs (the export example uses 8)


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
    real: dict[str, np.ndarray] | None = None,
) -> Parity:
    """ONNX Runtime vs PyTorch eval at batch sizes (and named-dim sizes) other than the export example's.

    With data (`real`: an array per input) the inputs are real examples, so a model is compared
    where it works (standardized inputs, token ids its vocabulary holds); without, seeded random
    inputs of the declared shapes (token ids over the vocabulary).
    """
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    model = model.eval()
    result = Parity(tolerance)
    use_data = bool(real) and all(len(a) for a in real.values())
    for k, batch in enumerate(batch_sizes):
        if use_data:
            rows = np.arange(k * batch, (k + 1) * batch) % len(next(iter(real.values())))
            feeds = {
                name: torch.from_numpy(np.ascontiguousarray(a[rows])) for name, a in real.items()
            }
        else:
            feeds = example_feeds(model, batch, OTHER_DYNAMIC_SIZE, seed=100 + k)
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
    feeds = example_feeds(model, ir.example_batch, 8, seed=0)
    try:
        with torch.no_grad():
            model.eval()(*[feeds[i.name] for i in ir.inputs])
    except Exception as e:
        return f"the model fails in PyTorch itself: {short(e)}"
    finally:
        for h in hooks:
            h.remove()
    import onnxruntime as ort

    for node in ir.nodes:
        if not node.attr or node.attr not in captured:
            continue
        sub, args = getattr(model, node.attr), captured[node.attr]
        try:
            proto = dynamo_export(sub, args, None, None, None, opset, f" of layer '{node.name}'")
            session = ort.InferenceSession(
                proto.SerializeToString(), providers=["CPUExecutionProvider"]
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
            return f"layer '{node.name}' ({node.kind}) cannot be exported: {short(e)}"
    return None
