"""An ONNX Runtime session around a specc model: device choice, checked inputs, task helpers.

Imports onnxruntime and numpy only, so an application can embed it without torch.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .contracts import MODEL_FORMAT, Meta
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


class Predictions:
    """What `Model.predict` returns for a task that answers with labels (a classifier, a
    multi-label model): one row per input, for JSON (`rows`) and for people (`lines`)."""

    def rows(self) -> list[dict]:
        raise NotImplementedError

    def lines(self) -> list[str]:
        raise NotImplementedError


@dataclass(frozen=True)
class Prediction(Predictions):
    """A classifier's answer: the likeliest class of each input."""

    classes: np.ndarray  # (N,) class indices
    labels: list  # (N,) label names (or indices as strings)
    probabilities: np.ndarray  # (N, C)

    def rows(self) -> list[dict]:
        return [
            {"class": int(c), "label": label, "probability": float(self.probabilities[i, c])}
            for i, (c, label) in enumerate(zip(self.classes, self.labels, strict=True))
        ]

    def lines(self) -> list[str]:
        return [f"{i}\t{r['label']}\t{r['probability']:.4f}" for i, r in enumerate(self.rows())]


# How a task's model output becomes Predictions (tasks without an entry answer with the raw
# values). A task's runtime module adds its own: runtime/multilabel.py.
INTERPRETERS: dict = {}


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


def _options(ort, threads, inter_op_threads, optimization):
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    if inter_op_threads:
        options.inter_op_num_threads = inter_op_threads
        options.execution_mode = ort.ExecutionMode.ORT_PARALLEL
    options.graph_optimization_level = {
        "disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[optimization]
    options.log_severity_level = 3
    return options


def _session(ort, path: Path, options, providers):
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=providers)
    except Exception as e:  # onnxruntime raises its own types for unreadable or invalid files
        detail = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        raise ModelLoadError(
            f"cannot load {path}: {detail} (is the file truncated or not an ONNX model?)"
        ) from e


def _open_session(ort, path: Path, options, providers, optimization: str, cache: bool):
    """A session, through the optimized-graph cache next to the model when allowed.

    The cache holds the graph ONNX Runtime optimized for these providers and this level, keyed
    by the model file's sha256 (recorded with its size and mtime, so an unchanged file is not
    hashed again) and the ONNX Runtime version; a cached graph with any other key is rebuilt. With level `all` the graph may hold hardware-specific layouts: the cache is for the
    machine that wrote it. Returns (session, "hit" | "written" | "off").
    """
    if not cache or optimization == "disabled":
        return _session(ort, path, options, providers), "off"
    stem = f".{path.stem}.{optimization}.{providers[0].removesuffix('ExecutionProvider').lower()}"
    cached, sidecar = path.with_name(stem + ".onnx"), path.with_name(stem + ".json")
    stat = path.stat()
    seen = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    settings = {
        "optimization": optimization,
        "providers": providers,
        "onnxruntime": ort.__version__,
    }
    try:
        record = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        record = {}
    # The sha256 recorded for this exact file (same size and mtime) is trusted, as git trusts its
    # index; any change of the file means hashing it again.
    if record.get("file") == seen and record.get("settings") == settings:
        digest = record.get("model_sha256")
    else:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    key = {"model_sha256": digest, "file": seen, "settings": settings}
    if cached.is_file() and record == key:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        try:
            return _session(ort, cached, options, providers), "hit"
        except ModelLoadError:
            options.graph_optimization_level = _options(
                ort, None, None, optimization
            ).graph_optimization_level
    tmp = cached.with_name(cached.name + f".{os.getpid()}.tmp")
    options.optimized_model_filepath = str(tmp)
    try:
        session = _session(ort, path, options, providers)
    except ModelLoadError:
        tmp.unlink(missing_ok=True)
        raise
    try:
        os.replace(tmp, cached)
        side_tmp = sidecar.with_name(sidecar.name + f".{os.getpid()}.tmp")
        side_tmp.write_text(json.dumps(key), encoding="utf-8")
        os.replace(side_tmp, sidecar)
        return session, "written"
    except OSError:  # a read-only folder: serve without a cache
        tmp.unlink(missing_ok=True)
        return session, "off"


def _check_specc_metadata(path: Path, meta) -> None:
    if Meta.VERSION not in meta:
        raise ModelLoadError(
            f"{path} has no specc metadata: it was not exported by specc (specc.runtime serves the model.onnx of `specc train`)"
        )
    fmt = meta.get(Meta.FORMAT, MODEL_FORMAT)
    if fmt != MODEL_FORMAT:
        raise ModelLoadError(
            f"{path} was built by specc {meta[Meta.VERSION]} in model format {fmt}; this specc.runtime reads format {MODEL_FORMAT}: re-export it with this version"
        )


OPTIMIZATION_LEVELS = ("disabled", "basic", "extended", "all")


class Model:
    """A loaded specc model. `run(**inputs)` for raw outputs; `predict(x)` for classifiers.

    One Model may be shared by several threads: ONNX Runtime's `run` is thread-safe and the Model
    keeps no per-call state (each bound run gets its own IOBinding).
    """

    def __init__(
        self,
        path: str | Path,
        device: str = "auto",
        threads: int | None = None,
        inter_op_threads: int | None = None,
        optimization: str = "all",
        cache: bool = True,
    ):
        ort = _import_ort()
        self.path = _resolve(path)
        if optimization not in OPTIMIZATION_LEVELS:
            raise ModelLoadError(
                f"unknown optimization level '{optimization}': use one of {', '.join(OPTIMIZATION_LEVELS)}"
            )
        wanted = providers_for(device, ort.get_available_providers())
        options = _options(ort, threads, inter_op_threads, optimization)
        self.session, self.cache = _open_session(
            ort, self.path, options, wanted, optimization, cache
        )
        active = self.session.get_providers()
        if device == "cuda" and active[0] != "CUDAExecutionProvider":
            raise DeviceError(
                f"the CUDA provider did not initialise (active: {', '.join(active)}); check the CUDA and cuDNN libraries that onnxruntime-gpu needs"
            )
        self.device = "cuda" if active[0] == "CUDAExecutionProvider" else "cpu"
        meta = self.session.get_modelmeta().custom_metadata_map
        _check_specc_metadata(self.path, meta)
        self.metadata = dict(meta)
        self.task = meta.get(Meta.TASK)
        self.output_kind = meta.get(Meta.OUTPUT_KIND)
        self.labels = json.loads(meta[Meta.LABELS]) if Meta.LABELS in meta else None
        self.inputs = [self._info(i) for i in self.session.get_inputs()]
        self.outputs = [self._info(o) for o in self.session.get_outputs()]
        self._options_args = (threads, inter_op_threads, optimization)
        self._output_names = [o.name for o in self.outputs]
        # ONNX Runtime's own binding, without InferenceSession.run's Python-side checks: this
        # class checks inputs itself (falls back to the public method if the binding moves).
        inner = getattr(self.session, "_sess", None)
        self._run = inner.run if inner is not None and hasattr(inner, "run") else self.session.run
        first = self.inputs[0]
        tail = first.shape[1:]
        self._fast = (
            (first.name, np.dtype(first.dtype), tuple(tail))
            if len(self.inputs) == 1 and all(isinstance(d, int) for d in tail)
            else None
        )
        if self.device == "cuda":
            on_cpu = {
                k: v for k, v in self.node_placement().items() if k != "CUDAExecutionProvider"
            }
            if on_cpu:
                warnings.warn(
                    f"{self.path.name}: {sum(on_cpu.values())} node(s) run outside CUDA ({on_cpu}); "
                    "their inputs and outputs are copied between devices",
                    RuntimeWarning,
                    stacklevel=2,
                )

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
        return {name: self._check_array(name, info, feeds[name]) for name, info in expected.items()}

    @staticmethod
    def _check_array(name: str, info: TensorInfo, value) -> np.ndarray:
        arr = np.asarray(value)
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
            hint = "; add a batch dimension (x[None])" if arr.ndim == len(info.shape) - 1 else ""
            raise InputError(
                f"input '{name}': expected shape ({', '.join(map(str, info.shape))}), got {tuple(arr.shape)}{hint}"
            )
        if arr.shape[0] == 0:
            raise InputError(f"input '{name}': the batch is empty")
        return np.ascontiguousarray(arr)

    # ------------------------------------------------------------------ running

    def run(self, **inputs) -> dict[str, np.ndarray]:
        """Run the model; returns {output name: array}."""
        feeds = inputs if self._ready(inputs) else self.check_inputs(inputs)
        values = self._run(self._output_names, feeds, None)
        return dict(zip(self._output_names, values, strict=True))

    def _ready(self, inputs: dict) -> bool:
        """The common case, checked in a few comparisons: one well-formed, contiguous array."""
        fast = self._fast
        if fast is None or len(inputs) != 1:
            return False
        x = inputs.get(fast[0])
        return (
            type(x) is np.ndarray
            and x.dtype == fast[1]
            and x.shape[1:] == fast[2]
            and x.shape[0] > 0
            and x.flags.c_contiguous
        )

    def __call__(self, *args, **inputs):
        """model(x) for one input (or model(name=x)); returns the output (a dict for several)."""
        if args:
            if len(args) != 1 or len(self.inputs) != 1 or inputs:
                raise InputError(
                    "pass inputs by name: model("
                    + ", ".join(f"{i.name}=..." for i in self.inputs)
                    + ")"
                )
            x = args[0]
            feeds = {self.inputs[0].name: x}
            if self._ready(feeds):
                values = self._run(self._output_names, feeds, None)
                return (
                    values[0]
                    if len(values) == 1
                    else dict(zip(self._output_names, values, strict=True))
                )
            inputs = {self.inputs[0].name: x}
        out = self.run(**inputs)
        return out[self.outputs[0].name] if len(out) == 1 else out

    def run_batched(self, inputs, batch_size: int = 256):
        """Run over arrays of any length in batches; returns what `model(inputs)` would."""
        if batch_size < 1:
            raise InputError("batch_size must be at least 1")
        feeds = inputs if isinstance(inputs, dict) else None
        if feeds is None:
            if len(self.inputs) != 1:
                raise InputError("pass a dict of inputs by name to a model with several inputs")
            feeds = {self.inputs[0].name: inputs}
        feeds = {k: np.asarray(v) for k, v in feeds.items()}
        sizes = {len(v) for v in feeds.values()}
        if len(sizes) != 1:
            raise InputError(f"inputs have different batch sizes: {sorted(sizes)}")
        (n,) = sizes
        parts = [
            self.run(**{k: v[start : start + batch_size] for k, v in feeds.items()})
            for start in range(0, n, batch_size)
        ]
        out = {o.name: np.concatenate([p[o.name] for p in parts]) for o in self.outputs}
        return out if isinstance(inputs, dict) or len(out) > 1 else out[self.outputs[0].name]

    def run_bound(self, **inputs) -> dict:
        """Run with inputs and outputs bound in place (IOBinding): no host copies on CUDA.

        Inputs may be numpy arrays, ONNX Runtime OrtValues, or any DLPack tensor (a torch tensor
        on the model's device is used in place). Outputs stay on the model's device: torch
        tensors (zero-copy through DLPack) when an input was a torch tensor, else OrtValues.
        """
        ort = _import_ort()
        expected = {i.name: i for i in self.inputs}
        if set(inputs) != set(expected):
            self.check_inputs({k: np.zeros(0) for k in inputs})  # raises, with run()'s message
        binding = self.session.io_binding()
        torch_in = False
        for name, value in inputs.items():
            info = expected[name]
            if isinstance(value, np.ndarray | list):
                binding.bind_cpu_input(name, self._check_array(name, info, value))
                continue
            if not isinstance(value, ort.OrtValue):
                torch_in = torch_in or type(value).__module__.startswith("torch")
                if not hasattr(value, "__dlpack__"):
                    raise InputError(
                        f"input '{name}': expected an array, OrtValue or DLPack tensor, got {type(value).__name__}"
                    )
                value = ort.OrtValue.from_dlpack(value)
            shape, dtype = tuple(value.shape()), value.data_type()
            if value.device_name().lower() != self.device:
                raise InputError(
                    f"input '{name}' is on {value.device_name().lower()}, the model runs on {self.device}"
                )
            want = f"tensor({'float' if info.dtype == 'float32' else info.dtype})"
            if (
                dtype != want
                or len(shape) != len(info.shape)
                or any(
                    isinstance(d, int) and d != a for d, a in zip(info.shape, shape, strict=False)
                )
            ):
                raise InputError(f"input '{name}': expected {info.describe()}, got {dtype} {shape}")
            binding.bind_ortvalue_input(name, value)
        for o in self.outputs:
            binding.bind_output(o.name, self.device)
        self.session.run_with_iobinding(binding)
        values = binding.get_outputs()
        if torch_in:
            import torch

            return {o.name: torch.from_dlpack(v) for o, v in zip(self.outputs, values, strict=True)}
        return {o.name: v for o, v in zip(self.outputs, values, strict=True)}

    def node_placement(self) -> dict[str, int]:
        """How many graph nodes each execution provider ran, from one profiled run."""
        ort = _import_ort()
        options = _options(ort, *self._options_args)
        with tempfile.TemporaryDirectory() as tmp:
            options.enable_profiling = True
            options.profile_file_prefix = str(Path(tmp) / "placement")
            session = _session(ort, self.path, options, self.session.get_providers())
            feeds = {}
            for i in self.inputs:
                shape = [d if isinstance(d, int) else (1 if d == "batch" else 8) for d in i.shape]
                feeds[i.name] = np.zeros(shape, dtype=i.dtype)
            session.run(None, feeds)
            events = json.loads(Path(session.end_profiling()).read_text(encoding="utf-8"))
        counts: dict[str, int] = {}
        for e in events:
            provider = (e.get("args") or {}).get("provider")
            if e.get("cat") == "Node" and provider and e.get("name", "").endswith("_kernel_time"):
                counts[provider] = counts.get(provider, 0) + 1
        return counts

    def probabilities(self, x) -> np.ndarray:
        """Class probabilities (N, C) for a classifier, whatever its output layer."""
        if self.task != "classification":
            raise InputError(
                f"probabilities() is for classifiers; this model's task is '{self.task}'"
            )
        return self.probabilities_from(self(x))

    def probabilities_from(self, output) -> np.ndarray:
        """Class probabilities (N, C) from this classifier's raw output (logits, probabilities...)."""
        out = np.asarray(output, dtype=np.float64)
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

    def predict(self, x, **options):
        """The task's answer for inputs x: Predictions for a task that answers with labels (a
        classifier: classes, labels, probabilities), else the raw values (regression)."""
        output = self(x)
        return self.predictions_from(output, **options) if self.task in INTERPRETERS else output

    def predictions_from(self, output, **options) -> Predictions | None:
        """The task's answer from this model's raw output; None for a task without labels."""
        interpret = INTERPRETERS.get(self.task)
        return interpret(self, np.asarray(output), **options) if interpret else None


def _classify(model: Model, output: np.ndarray) -> Prediction:
    probs = model.probabilities_from(output)
    classes = probs.argmax(axis=1)
    names = model.labels or [str(i) for i in range(probs.shape[1])]
    return Prediction(classes, [names[c] for c in classes], probs)


INTERPRETERS["classification"] = _classify


def load(path: str | Path, device: str = "auto", **options) -> Model:
    """Load a .onnx file, or the output folder of `specc train`, on 'auto', 'cpu' or 'cuda'.

    Options: threads, inter_op_threads, optimization ('disabled'|'basic'|'extended'|'all'),
    cache (reuse the optimized graph saved next to the model; default True).
    """
    return Model(path, device=device, **options)
