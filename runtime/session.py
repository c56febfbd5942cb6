"""An ONNX Runtime session around a specc model: device choice, checked inputs, task helpers.

Imports onnxruntime and numpy only, so an application can embed it without torch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DeviceError, InputError, ModelLoadError

_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(int64)": np.int64,
    "tensor(double)": np.float64,
    "tensor(int32)": np.int32,
}


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dtype: str  # numpy name, e.g. "float32"
    shape: tuple  # ints for fixed dims, strings for dynamic ones ("batch", "time")

    def describe(self) -> str:
        return f"{self.dtype} ({', '.join(map(str, self.shape))})"


@dataclass(frozen=True)
class Prediction:
    classes: np.ndarray  # (N,) class indices
    labels: list  # (N,) label names (or indices as strings)
    probabilities: np.ndarray  # (N, C)


def _import_ort():
    try:
        import onnxruntime as ort
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ModelLoadError(
            "onnxruntime is not installed: pip install 'specc[cpu]' (or 'specc[gpu]' for CUDA)"
        ) from e
    return ort


def _resolve(path: str | Path) -> Path:
    p = Path(path)
    if p.is_dir():
        p = p / "model.onnx"
    if not p.is_file():
        raise ModelLoadError(
            f"no model at {path}"
            + (" (expected model.onnx in that folder)" if Path(path).is_dir() else "")
        )
    return p


def providers_for(device: str, available: list[str]) -> list[str]:
    """Execution providers to ask for; 'cuda' without the CUDA provider is an error, not a fallback."""
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device == "cuda":
        if "CUDAExecutionProvider" not in available:
            raise DeviceError(
                "device='cuda' but ONNX Runtime has no CUDA provider here (available: "
                + ", ".join(available)
                + "); install onnxruntime-gpu (pip install 'specc[gpu]') in an environment without onnxruntime, on a machine with an NVIDIA driver"
            )
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if device == "auto":
        return (["CUDAExecutionProvider"] if "CUDAExecutionProvider" in available else []) + [
            "CPUExecutionProvider"
        ]
    raise DeviceError(f"unknown device '{device}': use 'auto', 'cpu' or 'cuda'")


class Model:
    """A loaded specc model. `run(**inputs)` for raw outputs; `predict(x)` for classifiers."""

    def __init__(self, path: str | Path, device: str = "auto", threads: int | None = None):
        ort = _import_ort()
        self.path = _resolve(path)
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        options.log_severity_level = 3
        wanted = providers_for(device, ort.get_available_providers())
        try:
            self.session = ort.InferenceSession(
                str(self.path), sess_options=options, providers=wanted
            )
        except Exception as e:  # onnxruntime raises its own types for unreadable or invalid files
            raise ModelLoadError(
                f"cannot load {self.path}: {str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__}"
            ) from e
        active = self.session.get_providers()
        if device == "cuda" and active[0] != "CUDAExecutionProvider":
            raise DeviceError(
                f"the CUDA provider did not initialise (active: {', '.join(active)}); check the CUDA and cuDNN libraries that onnxruntime-gpu needs"
            )
        self.device = "cuda" if active[0] == "CUDAExecutionProvider" else "cpu"
        meta = self.session.get_modelmeta().custom_metadata_map
        self.metadata = dict(meta)
        self.task = meta.get("specc.task")
        self.output_kind = meta.get("specc.output_kind")
        self.labels = json.loads(meta["specc.labels"]) if "specc.labels" in meta else None
        self.inputs = [self._info(i) for i in self.session.get_inputs()]
        self.outputs = [self._info(o) for o in self.session.get_outputs()]

    @staticmethod
    def _info(node) -> TensorInfo:
        dtype = np.dtype(_DTYPES.get(node.type, np.float32)).name
        shape = tuple(d if isinstance(d, int) else (d or "?") for d in node.shape)
        return TensorInfo(node.name, dtype, shape)

    def __repr__(self) -> str:
        ins = ", ".join(f"{i.name}: {i.describe()}" for i in self.inputs)
        outs = ", ".join(f"{o.name}: {o.describe()}" for o in self.outputs)
        return f"<specc.runtime.Model {self.path.name} on {self.device}: {ins} -> {outs}>"

    # ------------------------------------------------------------------ inputs

    def check_inputs(self, feeds: dict) -> dict[str, np.ndarray]:
        """Validate names, dtypes and shapes; returns arrays ready for ONNX Runtime."""
        expected = {i.name: i for i in self.inputs}
        unknown = [k for k in feeds if k not in expected]
        missing = [k for k in expected if k not in feeds]
        if unknown or missing:
            parts = []
            if unknown:
                parts.append(f"unknown input {', '.join(map(repr, unknown))}")
            if missing:
                parts.append(f"missing input {', '.join(map(repr, missing))}")
            raise InputError(
                "; ".join(parts)
                + f"; the model takes {', '.join(f'{n}: {i.describe()}' for n, i in expected.items())}"
            )
        out = {}
        for name, info in expected.items():
            arr = np.asarray(feeds[name])
            want = np.dtype(info.dtype)
            if arr.dtype != want:
                same_kind = (
                    np.issubdtype(arr.dtype, np.floating) and np.issubdtype(want, np.floating)
                ) or (np.issubdtype(arr.dtype, np.integer) and np.issubdtype(want, np.integer))
                if not same_kind:
                    raise InputError(
                        f"input '{name}': expected {info.describe()}, got a {arr.dtype} array"
                    )
                arr = arr.astype(want)
            if arr.ndim != len(info.shape) or any(
                isinstance(d, int) and d != a for d, a in zip(info.shape, arr.shape, strict=False)
            ):
                hint = (
                    "; add a batch dimension (x[None])" if arr.ndim == len(info.shape) - 1 else ""
                )
                raise InputError(
                    f"input '{name}': expected shape ({', '.join(map(str, info.shape))}), got {tuple(arr.shape)}{hint}"
                )
            if arr.shape[0] == 0:
                raise InputError(f"input '{name}': the batch is empty")
            out[name] = np.ascontiguousarray(arr)
        return out

    # ------------------------------------------------------------------ running

    def run(self, **inputs) -> dict[str, np.ndarray]:
        """Run the model; returns {output name: array}."""
        feeds = self.check_inputs(inputs)
        values = self.session.run(None, feeds)
        return {o.name: v for o, v in zip(self.outputs, values, strict=True)}

    def __call__(self, *args, **inputs):
        if args:
            if len(args) != 1 or len(self.inputs) != 1 or inputs:
                raise InputError(
                    "pass inputs by name: model("
                    + ", ".join(f"{i.name}=..." for i in self.inputs)
                    + ")"
                )
            inputs = {self.inputs[0].name: args[0]}
        out = self.run(**inputs)
        return out[self.outputs[0].name] if len(out) == 1 else out

    def probabilities(self, x) -> np.ndarray:
        """Class probabilities (N, C) for a classifier, whatever its output layer."""
        if self.task != "classification":
            raise InputError(
                f"probabilities() is for classifiers; this model's task is '{self.task}'"
            )
        out = np.asarray(self(x), dtype=np.float64)
        kind = self.output_kind
        if kind == "logits":
            z = out - out.max(axis=-1, keepdims=True)
            e = np.exp(z)
            return e / e.sum(axis=-1, keepdims=True)
        if kind == "log_probabilities":
            return np.exp(out)
        if kind == "probabilities":
            return out
        p = out.reshape(len(out), -1)[:, :1]
        if kind == "binary_logit":
            p = 1.0 / (1.0 + np.exp(-p))
        return np.concatenate([1.0 - p, p], axis=1)

    def predict(self, x):
        """Classifier: a Prediction (classes, labels, probabilities). Regression: the values."""
        if self.task == "regression":
            return self(x)
        probs = self.probabilities(x)
        classes = probs.argmax(axis=1)
        names = self.labels or [str(i) for i in range(probs.shape[1])]
        return Prediction(classes, [names[c] for c in classes], probs)


def load(path: str | Path, device: str = "auto", threads: int | None = None) -> Model:
    """Load a .onnx file, or the output folder of `specc train`, on 'auto', 'cpu' or 'cuda'."""
    return Model(path, device=device, threads=threads)
