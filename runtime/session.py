"""An ONNX Runtime session around a specc model: device choice, checked inputs, task helpers.

Imports onnxruntime and numpy only, so an application can embed it without torch.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .contracts import MODEL_FORMAT, Meta
from .errors import DeviceError, InputError, ModelLoadError, RunError
from .text import Vocab

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


def _check_threads(name: str, value) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise ModelLoadError(
            f"{name} must be a whole number >= 1 (or None, or 0: ONNX Runtime's choice), got {value!r}"
        )


def _options(ort, threads, inter_op_threads, optimization):
    _check_threads("threads", threads)
    _check_threads("inter_op_threads", inter_op_threads)
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
    options.log_severity_level = 4  # failures come back as exceptions, told in our words
    return options


def _session(ort, source: Path | bytes, options, providers, path: Path | None = None):
    """An InferenceSession from a file or from bytes already read (then `path` names them)."""
    where = path or source
    try:
        return ort.InferenceSession(
            source if isinstance(source, bytes) else str(source),
            sess_options=options,
            providers=providers,
        )
    except Exception as e:  # onnxruntime raises its own types for unreadable or invalid files
        detail = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        raise ModelLoadError(
            f"cannot load {where}: {detail} (is the file truncated or not an ONNX model?)"
        ) from e


CACHE_ENV = "SPECC_CACHE_DIR"


def cache_dir() -> Path:
    """Where optimized graphs are kept: $SPECC_CACHE_DIR, else $XDG_CACHE_HOME/specc, else
    ~/.cache/specc. Never beside the model: a folder that is shipped cannot carry an entry."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "specc"


def _private_dir(folder: Path) -> bool:
    """The cache folder exists (made 0700 if not) and only this user can write to it: an entry
    someone else could plant would decide what runs. POSIX only; elsewhere it is just made."""
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = folder.stat()
    except OSError:
        return False
    if os.name != "posix":
        return True
    return st.st_uid == os.getuid() and not st.st_mode & 0o022


def _open_session(ort, path: Path, options, providers, optimization: str, cache: bool):
    """A session on the bytes of `path`, through the optimized-graph cache when allowed.

    The model file is read once and ONNX Runtime is given those bytes, so what was hashed is
    what runs. A cache entry is the graph ONNX Runtime optimized for these providers and this
    level, named by the sha256 of those bytes and the ONNX Runtime version, in the per-user
    cache_dir(); nothing next to the model is ever read. With level `all` the graph may hold
    hardware-specific layouts: the cache belongs to the machine that wrote it.
    Returns (session, "hit" | "written" | "off").
    """
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ModelLoadError(f"cannot read {path}: {e.strerror}") from None
    folder = cache_dir()
    if not cache or optimization == "disabled" or not _private_dir(folder):
        return _session(ort, data, options, providers, path), "off"
    digest = hashlib.sha256(data).hexdigest()
    provider = providers[0].removesuffix("ExecutionProvider").lower()
    cached = folder / f"{digest}.{optimization}.{provider}.ort{ort.__version__}.onnx"
    if cached.is_file():
        level = options.graph_optimization_level
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        try:
            return _session(ort, cached, options, providers), "hit"
        except ModelLoadError:  # a damaged entry: rebuilt below
            options.graph_optimization_level = level
    tmp = cached.with_name(cached.name + f".{os.getpid()}.{threading.get_ident()}.tmp")
    options.optimized_model_filepath = str(tmp)
    try:
        session = _session(ort, data, options, providers, path)
    except ModelLoadError:
        tmp.unlink(missing_ok=True)
        raise
    try:
        os.replace(tmp, cached)
        return session, "written"
    except OSError:  # a read-only cache folder: serve without a cache
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
        check_finite: bool = True,
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
        self.check_finite = check_finite
        self.token_ids = _token_ids(meta, self.inputs)
        self.length_of = _lengths(meta, self.inputs, self.token_ids)
        # integer (batch, time, ...) inputs: token ids, whatever the vocabulary (even unknown)
        self.sequences_of_ids = {
            i.name for i in self.inputs if i.dtype.startswith("int") and len(i.shape) >= 2
        }
        # ONNX Runtime's own binding, without InferenceSession.run's Python-side checks: this
        # class checks inputs itself (falls back to the public method if the binding moves).
        inner = getattr(self.session, "_sess", None)
        self._run = inner.run if inner is not None and hasattr(inner, "run") else self.session.run
        first = self.inputs[0]
        tail = first.shape[1:]
        self._fast = (
            (first.name, np.dtype(first.dtype), tuple(tail))
            if len(self.inputs) == 1
            and all(isinstance(d, int) for d in tail)
            and first.name not in self.token_ids
            else None
        )
        self._finite_fast = check_finite and first.dtype.startswith("float")
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
        arrays = {
            name: self._check_array(name, info, feeds[name]) for name, info in expected.items()
        }
        self._check_values(arrays)
        return arrays

    def _check_values(self, arrays: dict[str, np.ndarray]) -> None:
        """What shapes and dtypes cannot say: one batch size across inputs, token ids inside the
        vocabulary, lengths from 1 to the time steps they count, no NaN or infinity. ONNX
        Runtime would fail on some (and take a whole micro-batch down) or answer nonsense."""
        sizes = {}
        for info in self.inputs:
            if "batch" in info.shape:
                sizes[info.name] = arrays[info.name].shape[info.shape.index("batch")]
        if len(set(sizes.values())) > 1:
            raise InputError(
                "inputs disagree on the batch size: "
                + ", ".join(f"'{k}' has {v}" for k, v in sizes.items())
            )
        for name, arr in arrays.items():
            count = self.token_ids.get(name)
            if count is not None:
                bad = (arr < 0) | (arr >= count)
                if bad.any():
                    at = tuple(int(i) for i in np.argwhere(bad)[0])
                    raise InputError(
                        f"input '{name}' holds token id {int(arr[at])} at {list(at)}; this model's "
                        f"token ids run from 0 to {count - 1}"
                    )
            elif name in self.sequences_of_ids and arr.size and arr.min() < 0:
                at = tuple(int(i) for i in np.argwhere(arr < 0)[0])
                raise InputError(
                    f"input '{name}' holds token id {int(arr[at])} at {list(at)}; token ids are "
                    "never negative"
                )
            counted = self.length_of.get(name)
            if counted is not None:
                steps = arrays[counted].shape[1]
                bad = (arr < 1) | (arr > steps)
                if bad.any():
                    row = int(np.argwhere(bad)[0][0])
                    raise InputError(
                        f"input '{name}' holds the length {int(arr[row])} in row {row}; each length "
                        f"counts the steps of '{counted}', so it must be from 1 to {steps}"
                    )
            if self.check_finite and arr.dtype.kind == "f":
                _check_finite(name, arr)

    @staticmethod
    def _check_array(name: str, info: TensorInfo, value) -> np.ndarray:
        arr = _as_array(name, value)
        want = np.dtype(info.dtype)
        if arr.dtype != want:
            same_kind = (
                np.issubdtype(arr.dtype, np.floating) and np.issubdtype(want, np.floating)
            ) or (np.issubdtype(arr.dtype, np.integer) and np.issubdtype(want, np.integer))
            if not same_kind:
                raise InputError(
                    f"input '{name}': expected {info.describe()}, got a {arr.dtype} array"
                )
            if want.kind in "iu" and arr.size:
                limits = np.iinfo(want)
                if arr.min() < limits.min or arr.max() > limits.max:
                    raise InputError(f"input '{name}' holds values that do not fit {want}")
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
        return self.run_checked(feeds)

    def run_checked(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run inputs that `check_inputs` returned (the server checks each request once, then
        runs them together); an ONNX Runtime failure is a RunError."""
        try:
            values = self._run(self._output_names, feeds, None)
        except Exception as e:  # onnxruntime's own exception types
            raise self._failed(e) from e
        return dict(zip(self._output_names, values, strict=True))

    def _failed(self, e: Exception) -> RunError:
        detail = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        error = RunError(f"{self.path.name}: ONNX Runtime failed on these inputs: {detail}")
        # ONNX Runtime's INVALID_ARGUMENT: these inputs, not the model or the machine, are wrong
        error.input_refused = type(e).__name__ == "InvalidArgument" or "INVALID_ARGUMENT" in str(e)
        return error

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
            and (not self._finite_fast or np.isfinite(x).all())
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
                try:
                    values = self._run(self._output_names, feeds, None)
                except Exception as e:  # onnxruntime's own exception types
                    raise self._failed(e) from e
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
        if isinstance(batch_size, int | np.integer) and batch_size < 1:
            raise InputError("batch_size must be at least 1")
        feeds = inputs if isinstance(inputs, dict) else None
        if feeds is None:
            if len(self.inputs) != 1:
                raise InputError("pass a dict of inputs by name to a model with several inputs")
            feeds = {self.inputs[0].name: inputs}
        if not isinstance(batch_size, int | np.integer) or isinstance(batch_size, bool):
            raise InputError(f"batch_size must be a whole number >= 1, got {batch_size!r}")
        feeds = {k: _as_array(k, v) for k, v in feeds.items()}
        for k, v in feeds.items():
            if v.ndim == 0:
                raise InputError(f"input '{k}' is a scalar; pass a batch (x[None] for one example)")
        sizes = {len(v) for v in feeds.values()}
        if len(sizes) != 1:
            raise InputError(f"inputs have different batch sizes: {sorted(sizes)}")
        (n,) = sizes
        if n == 0:
            raise InputError("the batch is empty: run_batched needs at least one row")
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


def _as_array(name: str, value) -> np.ndarray:
    """np.asarray, with numpy's errors (ragged lists, odd objects) as InputErrors."""
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as e:
        raise InputError(f"input '{name}' is not a rectangular array of numbers: {e}") from None
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise InputError(
            f"input '{name}' must be an array of numbers, got {arr.dtype} values"
            + (" (ragged lists?)" if arr.dtype == object else "")
        )
    return arr


def _check_finite(name: str, arr: np.ndarray) -> None:
    if not np.isfinite(arr).all():
        at = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
        raise InputError(
            f"input '{name}' holds {arr[at]} at {list(at)}; NaN and infinity make the model's "
            "answer meaningless (load with check_finite=False to let them through)"
        )


def _token_ids(meta: dict, inputs: list[TensorInfo]) -> dict[str, int]:
    """How many token ids each integer token input takes: the embedding rows the exporter
    recorded (Meta.TOKEN_IDS), else the vocabulary the graph carries (a seq2seq model's source
    and target vocabularies, a text model's Meta.VOCAB for its (batch, time) integer inputs)."""
    found: dict[str, int] = {}
    if Meta.SEQ2SEQ in meta:
        info = json.loads(meta[Meta.SEQ2SEQ])
        if info.get("source_vocab"):
            found[info["source"]["name"]] = len(Vocab.from_json(info["source_vocab"]))
        found[info["target"]] = len(Vocab.from_json(info["target_vocab"]))
    elif Meta.VOCAB in meta:
        size = len(Vocab.from_json(meta[Meta.VOCAB]))
        for i in inputs:
            if i.dtype == "int64" and len(i.shape) == 2:
                found[i.name] = size
    found.update({k: int(v) for k, v in json.loads(meta.get(Meta.TOKEN_IDS, "{}")).items()})
    names = {i.name for i in inputs}
    return {k: v for k, v in found.items() if k in names}


def _lengths(meta: dict, inputs: list[TensorInfo], token_ids: dict) -> dict[str, str]:
    """Lengths inputs ((batch,) integers) and the sequence input each counts: the first token
    input, else the first input with a named time axis. A seq2seq encoder's lengths count its
    source; a step graph's count the source, which it does not take (the runtime feeds them)."""
    if meta.get(Meta.GRAPH) == "step":
        return {}
    if Meta.SEQ2SEQ in meta:
        info = json.loads(meta[Meta.SEQ2SEQ])
        return {info["lengths"]: info["source"]["name"]} if info.get("lengths") else {}
    sequences = [i.name for i in inputs if len(i.shape) >= 2 and isinstance(i.shape[1], str)]
    tokens = [n for n in sequences if n in token_ids]
    counted = (tokens or sequences or [None])[0]
    return {
        i.name: counted
        for i in inputs
        if counted is not None
        and i.dtype.startswith("int")
        and len(i.shape) == 1
        and i.name not in token_ids
    }


def _classify(model: Model, output: np.ndarray) -> Prediction:
    probs = model.probabilities_from(output)
    classes = probs.argmax(axis=1)
    names = model.labels or [str(i) for i in range(probs.shape[1])]
    return Prediction(classes, [names[c] for c in classes], probs)


INTERPRETERS["classification"] = _classify


def load(path: str | Path, device: str = "auto", **options) -> Model:
    """Load a .onnx file, or the output folder of `specc train`, on 'auto', 'cpu' or 'cuda'.

    Options: threads, inter_op_threads, optimization ('disabled'|'basic'|'extended'|'all'),
    cache (reuse the optimized graph kept in the per-user cache_dir(); default True),
    check_finite (refuse NaN and infinity in float inputs; default True).
    """
    return Model(path, device=device, **options)
