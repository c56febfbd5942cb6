"""`specc serve`: specc models over HTTP (Starlette on uvicorn), with dynamic micro-batching.

Routes
    GET  /healthz                       liveness and the models served
    GET  /metrics                       Prometheus text: requests, latency and batch-size histograms
    GET  /v1/models                     the models, their inputs and outputs
    GET  /v1/models/{name}              one model
    POST /v1/models/{name}:predict      JSON {"inputs": {name: nested list}} (or {"inputs": list}
                                        for one input), or a .npy body (Content-Type
                                        application/x-npy) for one input; answers JSON, or .npy
                                        when the request's Accept is application/x-npy
    POST /v1/models/{name}:generate     a language model: {"prompt", "max_tokens", "temperature",
                                        "top_k", "top_p", "seed"} -> {"text", "tokens", "stop"}
    POST /v1/models/{name}:translate    a seq2seq model: {"inputs": [texts] (or images), "beam",
                                        "length_penalty", "sample", "temperature", "top_k",
                                        "seed", "max_len"} -> {"outputs", "stops"}
    Open Inference Protocol (KServe v2): GET /v2, /v2/health/live, /v2/health/ready,
    /v2/models/{name}, /v2/models/{name}/ready; POST /v2/models/{name}/infer (JSON tensors, or
    the binary tensor extension that tritonclient sends by default)

Every request is checked alone (names, dtypes, shapes, one batch size across inputs, token ids
inside the vocabulary, lengths within 1..time, no NaN or infinity) before it joins a batch, so a
bad request gets its own 4xx and never reaches the others' run. Concurrent requests to one model
are then gathered into one ONNX Runtime call: whatever queued up while the previous call ran (up
to `max_batch` examples; `max_wait_ms` > 0 also waits that long for company). Each request gets
exactly its own rows back; a batched run that fails anyway is split until each request has its
own answer. Requests that could never be batched together (different dynamic dims) run
separately. Every answer, errors included, is JSON (or .npy / binary tensors when asked). On
SIGTERM/SIGINT the server stops accepting, finishes what is in flight, then exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import InputError, RunError, SpeccRuntimeError
from .session import Model

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
NPY = "application/x-npy"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # a served name: one URL path segment, no ':'

# Open Inference Protocol datatypes and the numpy dtypes they carry.
V2_TYPES = {
    "BOOL": np.bool_,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
}
V2_NAMES = {np.dtype(v).name: k for k, v in V2_TYPES.items()}
V2_HEADER = "inference-header-content-length"


class HttpError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


@dataclass
class Histogram:
    buckets: tuple
    counts: list = field(default_factory=list)
    total: float = 0.0
    n: int = 0

    def __post_init__(self):
        self.counts = [0] * len(self.buckets)

    def observe(self, value: float) -> None:
        self.total += value
        self.n += 1
        for i, edge in enumerate(self.buckets):
            if value <= edge:
                self.counts[i] += 1

    def lines(self, name: str, labels: str) -> list[str]:
        out = [
            f'{name}_bucket{{{labels},le="{edge}"}} {c}'
            for edge, c in zip(self.buckets, self.counts, strict=True)
        ]
        out.append(f'{name}_bucket{{{labels},le="+Inf"}} {self.n}')
        out += [f"{name}_sum{{{labels}}} {self.total}", f"{name}_count{{{labels}}} {self.n}"]
        return out


class Metrics:
    def __init__(self):
        self.requests: dict[tuple[str, int], int] = {}
        self.latency: dict[str, Histogram] = {}
        self.batch: dict[str, Histogram] = {}

    def record(self, model: str, status: int, seconds: float) -> None:
        self.requests[(model, status)] = self.requests.get((model, status), 0) + 1
        self.latency.setdefault(model, Histogram(LATENCY_BUCKETS)).observe(seconds)

    def text(self) -> str:
        lines = ["# TYPE specc_requests_total counter"]
        lines += [
            f'specc_requests_total{{model="{m}",code="{c}"}} {n}'
            for (m, c), n in sorted(self.requests.items())
        ]
        lines.append("# TYPE specc_request_seconds histogram")
        for m, h in sorted(self.latency.items()):
            lines += h.lines("specc_request_seconds", f'model="{m}"')
        lines.append("# TYPE specc_batch_size histogram")
        for m, h in sorted(self.batch.items()):
            lines += h.lines("specc_batch_size", f'model="{m}"')
        return "\n".join(lines) + "\n"


class Batcher:
    """Gathers concurrent requests for one model into batched runs on a worker thread."""

    def __init__(self, model: Model, max_batch: int, max_wait_ms: float, metrics: Histogram):
        self.model, self.max_batch, self.max_wait = model, max_batch, max_wait_ms / 1000
        self.queue: asyncio.Queue = asyncio.Queue()
        self.sizes = metrics
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._loop())

    async def submit(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run checked inputs (Model.check_inputs) in the next batch; returns their own rows."""
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((feeds, future))
        return await future

    async def _loop(self) -> None:
        """Take what is queued now (up to max_batch) and run it; requests that arrive meanwhile
        queue up for the next run, so batches grow with the load and a lone request never waits.
        With max_wait > 0 a small batch also waits that long for company."""
        while True:
            first = await self.queue.get()
            group, rows = [first], _rows(first[0])
            while rows < self.max_batch and not self.queue.empty():
                item = self.queue.get_nowait()
                group.append(item)
                rows += _rows(item[0])
            deadline = time.monotonic() + self.max_wait
            while rows < self.max_batch and self.max_wait > 0:
                timeout = deadline - time.monotonic()
                if timeout <= 0:
                    break
                try:
                    item = await asyncio.wait_for(self.queue.get(), timeout)
                except TimeoutError:
                    break
                group.append(item)
                rows += _rows(item[0])
            for batch in _compatible(group):
                await self._run(batch)

    async def _run(self, batch: list) -> None:
        """One run for the batch. If it fails, the halves run again, down to single requests, so
        a request that fails alone gets its own error and every other request its answer."""
        try:
            names = list(batch[0][0])
            feeds = {k: np.concatenate([f[k] for f, _ in batch]) for k in names}
            self.sizes.observe(_rows(feeds))
            out = await asyncio.to_thread(self.model.run_checked, feeds)
        except Exception as e:
            if len(batch) > 1:
                half = len(batch) // 2
                await self._run(batch[:half])
                await self._run(batch[half:])
                return
            future = batch[0][1]
            if not future.done():
                future.set_exception(e)
            return
        start = 0
        for f, future in batch:
            n = _rows(f)
            if not future.done():
                future.set_result({k: v[start : start + n] for k, v in out.items()})
            start += n

    async def drain(self) -> None:
        """Answer everything already queued, then stop."""
        while not self.queue.empty():
            group = [self.queue.get_nowait() for _ in range(self.queue.qsize())]
            for batch in _compatible(group):
                await self._run(batch)
        if self.task:
            self.task.cancel()


def _rows(feeds: dict) -> int:
    return len(next(iter(feeds.values())))


def _compatible(group: list) -> list[list]:
    """Split a group into runs whose inputs agree on every dim but the batch."""
    by_shape: dict[tuple, list] = {}
    for item in group:
        key = tuple((k, v.shape[1:], v.dtype.str) for k, v in item[0].items())
        by_shape.setdefault(key, []).append(item)
    return list(by_shape.values())


class Server:
    def __init__(
        self,
        models: dict[str, Model],
        max_batch=32,
        max_wait_ms=0.0,
        batching=True,
        max_request_bytes=16 << 20,
        writers: dict | None = None,
        max_tokens=1024,
    ):
        self.models, self.max_batch, self.max_wait_ms = models, max_batch, max_wait_ms
        self.batching, self.max_request_bytes = batching, max_request_bytes
        self.writers = writers or {}
        self.max_tokens = max_tokens
        self.metrics = Metrics()
        self.batchers: dict[str, Batcher] = {}
        self.ready = False

    # -- lifecycle

    async def startup(self) -> None:
        if self.batching:
            for name, model in self.models.items():
                hist = self.metrics.batch.setdefault(name, Histogram(BATCH_BUCKETS))
                self.batchers[name] = Batcher(model, self.max_batch, self.max_wait_ms, hist)
                self.batchers[name].start()
        self.ready = True

    async def shutdown(self) -> None:
        self.ready = False
        for b in self.batchers.values():
            await b.drain()

    # -- requests

    def get(self, name: str) -> Model:
        model = self.models.get(name)
        if model is None:
            raise HttpError(404, f"no model '{name}'; serving: {', '.join(sorted(self.models))}")
        return model

    def verbs(self, name: str) -> list[str]:
        """What the model answers: :predict, and :generate or :translate for what writes text."""
        from .generate import LanguageModel

        writer = self.writers.get(name)
        if writer is None:
            return ["predict"]
        return ["predict", "generate" if isinstance(writer, LanguageModel) else "translate"]

    def describe(self, name: str) -> dict:
        m = self.models[name]
        return {
            "name": name,
            "task": m.task,
            "labels": m.labels,
            "device": m.device,
            "routes": [f"/v1/models/{name}:{verb}" for verb in self.verbs(name)],
            "inputs": [
                {"name": i.name, "dtype": i.dtype, "shape": list(i.shape)} for i in m.inputs
            ],
            "outputs": [
                {"name": o.name, "dtype": o.dtype, "shape": list(o.shape)} for o in m.outputs
            ],
        }

    async def run(self, name: str, feeds: dict) -> dict[str, np.ndarray]:
        """Check one request's inputs alone, then run them (batched with others when on)."""
        model = self.get(name)
        feeds = model.check_inputs(feeds)  # an InputError is this request's 400
        if self.batching:
            return await self.batchers[name].submit(feeds)
        return await asyncio.to_thread(model.run_checked, feeds)

    async def predict(self, name: str, body: bytes, content_type: str) -> dict[str, np.ndarray]:
        return await self.run(name, _parse(self.get(name), body, content_type))

    def writer(self, name: str, verb: str):
        model = self.get(name)
        found = self.writers.get(name)
        if found is None or verb not in self.verbs(name):
            raise HttpError(
                404,
                f"model '{name}' is a {model.task} model: it has no :{verb} "
                f"(it answers {', '.join(':' + v for v in self.verbs(name))})",
            )
        return found

    async def generate(self, name: str, body: bytes) -> dict:
        lm = self.writer(name, "generate")
        doc = _object(body)
        options = _options(
            doc,
            {
                "prompt": (str, ""),
                "max_tokens": (int, min(200, self.max_tokens)),
                "temperature": (float, 1.0),
                "top_k": (int, None),
                "top_p": (float, None),
                "seed": (int, None),
            },
        )
        if options["max_tokens"] > self.max_tokens:
            raise HttpError(
                400, f"max_tokens is at most {self.max_tokens} on this server (--max-tokens)"
            )
        if options["seed"] is not None and options["seed"] < 0:
            raise HttpError(400, "seed must be a whole number >= 0")
        out = await asyncio.to_thread(lambda: lm.generate(details=True, **options))
        return {"text": out.text, "tokens": len(out.tokens), "stop": out.stop}

    async def translate(self, name: str, body: bytes) -> dict:
        s2s = self.writer(name, "translate")
        doc = _object(body)
        if "inputs" not in doc:
            raise HttpError(400, 'expected {"inputs": [source, ...]} and decoding options')
        sources = doc.pop("inputs")
        options = _options(
            doc,
            {
                "beam": (int, None),
                "length_penalty": (float, 0.0),
                "sample": (bool, False),
                "temperature": (float, 1.0),
                "top_k": (int, None),
                "seed": (int, None),
                "max_len": (int, None),
            },
        )
        beam, sample = options.pop("beam"), options.pop("sample")
        if beam is not None and sample:
            raise HttpError(400, "beam and sample choose different decoders; give one")
        if beam is not None and beam < 1:
            raise HttpError(400, f"beam must be at least 1, got {beam}")
        if options["max_len"] is not None and options["max_len"] > self.max_tokens:
            raise HttpError(400, f"max_len is at most {self.max_tokens} on this server")
        if options["seed"] is not None and options["seed"] < 0:
            raise HttpError(400, "seed must be a whole number >= 0")
        method = "beam" if beam is not None else ("sample" if sample else "greedy")
        options.update(method=method, beam_size=beam or 4)
        if s2s.source_vocab is not None:
            if isinstance(sources, str):
                sources = [sources]
            if not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
                raise HttpError(400, '"inputs" must be a list of source texts')
            if not sources:
                raise HttpError(400, '"inputs" is empty')
            decoded = await asyncio.to_thread(
                lambda: s2s.translate(sources, details=True, **options)
            )
        else:
            images = _numbers("inputs", sources, np.float32)
            decoded = await asyncio.to_thread(lambda: s2s.caption(images, details=True, **options))
        return {"outputs": [d.text for d in decoded], "stops": [d.stop for d in decoded]}


# ---------------------------------------------------------------------- request bodies


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number (JSON has no NaN or Infinity)")


def _json(body: bytes):
    """Strict JSON: NaN and Infinity literals are refused, and nesting too deep for the parser
    is a 400, not a crash."""
    try:
        return json.loads(body, parse_constant=_no_constant)
    except RecursionError:
        raise HttpError(400, "the body is not JSON this server reads: nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise HttpError(400, f"the body is not JSON: {e}") from None


def _object(body: bytes) -> dict:
    doc = _json(body)
    if not isinstance(doc, dict):
        raise HttpError(400, "expected a JSON object")
    return doc


def _options(doc: dict, allowed: dict) -> dict:
    """Options of a JSON request, each of its type (a number may be an int where a float is
    asked; null gives the default); an unknown key is an error, so a typo is not ignored."""
    unknown = sorted(set(doc) - set(allowed))
    if unknown:
        raise HttpError(
            400, f"unknown option {', '.join(map(repr, unknown))}; allowed: {', '.join(allowed)}"
        )
    out = {}
    for key, (kind, default) in allowed.items():
        value = doc.get(key)
        if value is None:
            out[key] = default
            continue
        ok = (
            isinstance(value, bool)
            if kind is bool
            else not isinstance(value, bool)
            and isinstance(value, int if kind is int else (int, float) if kind is float else kind)
        )
        if not ok:
            raise HttpError(
                400, f"'{key}' must be {'a number' if kind is float else kind.__name__}"
            )
        out[key] = float(value) if kind is float else value
    return out


def _numbers(name: str, value, dtype) -> np.ndarray:
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as e:
        raise HttpError(400, f"input '{name}' is not a rectangular array: {e}") from None
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise HttpError(400, f"input '{name}' must be a rectangular array of numbers")
    want = np.dtype(dtype)
    if want.kind in "iu" and arr.dtype.kind == "f" and not np.all(arr == np.round(arr)):
        raise HttpError(400, f"input '{name}' takes integers ({want}), got fractions")
    if want.kind in "iu" and arr.size and arr.dtype.kind in "iuf":
        limits = np.iinfo(want)
        if arr.min() < limits.min or arr.max() > limits.max:
            raise HttpError(400, f"input '{name}' holds numbers too large for {want}")
    return arr.astype(want)  # JSON has no dtypes: numbers take the declared one


def _parse(model: Model, body: bytes, content_type: str) -> dict:
    if content_type.startswith(NPY):
        if len(model.inputs) != 1:
            raise HttpError(
                415, "a .npy body fits models with one input; send JSON with inputs by name"
            )
        try:
            arr = np.load(io.BytesIO(body), allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise HttpError(400, f"the body is not a .npy array: {e}") from None
        return {model.inputs[0].name: arr}
    doc = _json(body)
    if not isinstance(doc, dict) or "inputs" not in doc:
        raise HttpError(400, 'expected a JSON object {"inputs": ...}')
    inputs = doc["inputs"]
    if not isinstance(inputs, dict):
        if len(model.inputs) != 1:
            raise HttpError(400, 'this model has several inputs: send {"inputs": {name: values}}')
        inputs = {model.inputs[0].name: inputs}
    declared = {i.name: i.dtype for i in model.inputs}
    return {k: _numbers(k, v, declared.get(k, np.float32)) for k, v in inputs.items()}


# ---------------------------------------------------------------------- answers


def _plain(values: np.ndarray):
    """Nested lists for JSON; NaN and infinities as the strings "NaN", "Infinity", "-Infinity"
    (as proto3's JSON mapping writes them), since JSON numbers cannot hold them."""
    if values.dtype.kind != "f" or np.isfinite(values).all():
        return values.tolist()
    out = values.astype(object)
    out[np.isnan(values)] = "NaN"
    out[np.isposinf(values)] = "Infinity"
    out[np.isneginf(values)] = "-Infinity"
    return out.tolist()


def _row(row: dict) -> dict:
    return {
        k: (_plain(np.float64(v)) if isinstance(v, float) and not np.isfinite(v) else v)
        for k, v in row.items()
    }


def _answer(model: Model, out: dict[str, np.ndarray]) -> dict:
    doc = {"outputs": {k: _plain(v) for k, v in out.items()}}
    predictions = model.predictions_from(out[model.outputs[0].name])
    if predictions is not None:
        doc["predictions"] = [_row(r) for r in predictions.rows()]
    return doc


# ---------------------------------------------------------------------- Open Inference Protocol


def _v2_tensor_in(entry, blobs: list, names: dict) -> tuple[str, np.ndarray]:
    """One input tensor of a v2 request: JSON data (flat or nested, row-major) or the next
    binary blob (binary tensor extension)."""
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        raise HttpError(400, 'each input must be an object with "name", "shape", "datatype"')
    name, shape, datatype = entry["name"], entry.get("shape"), entry.get("datatype")
    if name not in names:
        raise HttpError(
            400, f"unknown input '{name}'; the model takes {', '.join(map(repr, names))}"
        )
    if (
        not isinstance(shape, list)
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
        or len(shape) > 32
    ):
        raise HttpError(400, f"input '{name}': shape must be a list of whole numbers >= 0")
    if datatype not in V2_TYPES:
        raise HttpError(
            400,
            f"input '{name}': datatype {datatype!r} is not one this server reads "
            f"({', '.join(V2_TYPES)})",
        )
    dtype = np.dtype(V2_TYPES[datatype])
    count = int(np.prod(shape, dtype=np.int64))
    size = (entry.get("parameters") or {}).get("binary_data_size")
    if size is not None:
        if not blobs or not isinstance(size, int) or size < 0 or size > len(blobs[0]):
            raise HttpError(400, f"input '{name}': binary_data_size runs past the body")
        raw = blobs[0][:size]
        blobs[0] = blobs[0][size:]
        if size != count * dtype.itemsize:
            raise HttpError(
                400,
                f"input '{name}': {size} bytes of binary data, but shape {shape} of {datatype} "
                f"takes {count * dtype.itemsize}",
            )
        return name, np.frombuffer(raw, dtype=dtype).reshape(shape)
    if "data" not in entry:
        raise HttpError(400, f"input '{name}' has no data (and no binary_data_size)")
    arr = _numbers(name, entry["data"], dtype)
    if arr.size != count:
        raise HttpError(400, f"input '{name}': {arr.size} values, but shape {shape} holds {count}")
    return name, arr.reshape(shape)


def _v2_request(model: Model, body: bytes, header_length: str | None) -> tuple[dict, dict]:
    """(the JSON header, feeds) of a v2 infer request."""
    if header_length is not None:
        if not header_length.isdigit() or int(header_length) > len(body):
            raise HttpError(400, f"{V2_HEADER} {header_length!r} does not fit the body")
        n = int(header_length)
        head, blobs = body[:n], [body[n:]]
    else:
        head, blobs = body, [b""]
    doc = _object(head)
    inputs = doc.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise HttpError(400, 'expected {"inputs": [{"name", "shape", "datatype", "data"}, ...]}')
    names = {i.name: i for i in model.inputs}
    feeds = dict(_v2_tensor_in(entry, blobs, names) for entry in inputs)
    if blobs[0]:
        raise HttpError(400, f"{len(blobs[0])} bytes of binary data belong to no input")
    return doc, feeds


def _v2_response(name: str, model: Model, doc: dict, out: dict) -> tuple[bytes, dict]:
    """The body and headers of a v2 answer: JSON, with binary outputs after it when asked."""
    wanted = doc.get("outputs")
    binary_all = bool((doc.get("parameters") or {}).get("binary_data_output", False))
    if wanted is None:
        wanted = [{"name": o.name} for o in model.outputs]
    if not isinstance(wanted, list) or not all(
        isinstance(w, dict) and isinstance(w.get("name"), str) for w in wanted
    ):
        raise HttpError(400, '"outputs" must be a list of {"name": ...}')
    unknown = [w["name"] for w in wanted if w["name"] not in out]
    if unknown:
        raise HttpError(
            400, f"unknown output {', '.join(map(repr, unknown))}; the model gives {', '.join(out)}"
        )
    entries, blobs = [], []
    for w in wanted:
        value = np.ascontiguousarray(out[w["name"]])
        entry = {
            "name": w["name"],
            "datatype": V2_NAMES.get(value.dtype.name, "FP32"),
            "shape": list(value.shape),
        }
        if (w.get("parameters") or {}).get("binary_data", binary_all):
            data = value.tobytes()
            entry["parameters"] = {"binary_data_size": len(data)}
            blobs.append(data)
        else:
            entry["data"] = _plain(value.reshape(-1))
        entries.append(entry)
    answer = {"model_name": name, "model_version": "1", "outputs": entries}
    if "id" in doc:
        answer["id"] = doc["id"]
    head = json.dumps(answer).encode()
    if not blobs:
        return head, {"content-type": "application/json"}
    return head + b"".join(blobs), {
        "content-type": "application/octet-stream",
        V2_HEADER: str(len(head)),
    }


def _v2_metadata(name: str, model: Model) -> dict:
    def tensor(t):
        return {
            "name": t.name,
            "datatype": V2_NAMES.get(t.dtype, "FP32"),
            "shape": [d if isinstance(d, int) else -1 for d in t.shape],
        }

    return {
        "name": name,
        "versions": ["1"],
        "platform": "onnxruntime_onnx",
        "inputs": [tensor(i) for i in model.inputs],
        "outputs": [tensor(o) for o in model.outputs],
    }


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("specc")
    except PackageNotFoundError:  # pragma: no cover - a source tree without metadata
        return "unknown"


# ---------------------------------------------------------------------- the application


def _status_of(e: Exception) -> tuple[int, str]:
    """A request's failure as (HTTP status, message): the request's fault is a 4xx."""
    if isinstance(e, HttpError):
        return e.status, e.message
    if isinstance(e, InputError):
        return 400, str(e)
    if isinstance(e, RunError):  # alone in its run (a failed batch is split)
        return (400 if e.input_refused else 500), str(e)
    if isinstance(e, SpeccRuntimeError):
        return 400, str(e)
    return 500, f"internal error: {type(e).__name__}: {e}"


class AccessLog:
    """One line per request: client, method, path, status, bytes sent and milliseconds."""

    def __init__(self, app, stream=None):
        self.app, self.stream = app, stream or sys.stdout

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start, seen = time.perf_counter(), {"status": 0, "bytes": 0}

        async def sending(message):
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
            elif message["type"] == "http.response.body":
                seen["bytes"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            client = scope.get("client")
            who = f"{client[0]}:{client[1]}" if client else "-"
            path = scope.get("path", "")
            if scope.get("query_string"):
                path += "?" + scope["query_string"].decode("latin-1")
            ms = (time.perf_counter() - start) * 1000
            self.stream.write(
                f'{who} "{scope["method"]} {path} HTTP/{scope.get("http_version", "1.1")}" '
                f"{seen['status']} {seen['bytes']} {ms:.1f}ms\n"
            )
            self.stream.flush()


def create_app(server: Server, access_log: bool = False):
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.requests import ClientDisconnect, Request
    from starlette.responses import JSONResponse, PlainTextResponse, Response
    from starlette.routing import Route

    async def read_body(request: Request) -> bytes:
        if request.headers.get("content-encoding", "identity").lower() != "identity":
            raise HttpError(415, "compressed request bodies are not read here: send them plain")
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > server.max_request_bytes:
            raise HttpError(
                413,
                f"request body of {declared} bytes is over the limit of {server.max_request_bytes} bytes",
            )
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > server.max_request_bytes:
                raise HttpError(
                    413, f"request body is over the limit of {server.max_request_bytes} bytes"
                )
            chunks.append(chunk)
        return b"".join(chunks)

    def error(status: int, message: str, headers=None):
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    def endpoint(handler):
        """A model route: errors become JSON answers, and every request is counted."""

        async def wrapped(request: Request):
            name = request.path_params["name"]
            start = time.perf_counter()
            status = 200
            try:
                response = await handler(request, name)
                status = response.status_code
                return response
            except ClientDisconnect:
                status = 499
                return Response(status_code=499)
            except Exception as e:
                status, message = _status_of(e)
                return error(status, message)
            finally:
                server.metrics.record(
                    name if name in server.models else "unknown",
                    status,
                    time.perf_counter() - start,
                )

        return wrapped

    @endpoint
    async def predict(request: Request, name: str):
        body = await read_body(request)
        out = await server.predict(
            name, body, request.headers.get("content-type", "application/json")
        )
        model = server.models[name]
        if NPY in request.headers.get("accept", ""):
            buf = io.BytesIO()
            np.save(buf, out[model.outputs[0].name], allow_pickle=False)
            return Response(buf.getvalue(), media_type=NPY)
        return JSONResponse(_answer(model, out))

    @endpoint
    async def generate(request: Request, name: str):
        return JSONResponse(await server.generate(name, await read_body(request)))

    @endpoint
    async def translate(request: Request, name: str):
        return JSONResponse(await server.translate(name, await read_body(request)))

    @endpoint
    async def v2_infer(request: Request, name: str):
        _check_version(request)
        model = server.get(name)
        body = await read_body(request)
        doc, feeds = _v2_request(model, body, request.headers.get(V2_HEADER))
        out = await server.run(name, feeds)
        content, headers = _v2_response(name, model, doc, out)
        return Response(content, headers=headers)

    def _check_version(request: Request):
        version = request.path_params.get("version")
        if version not in (None, "1"):
            raise HttpError(404, f"no version '{version}' of this model; versions: 1")

    async def models(request: Request):
        return JSONResponse({"models": [server.describe(n) for n in sorted(server.models)]})

    async def model(request: Request):
        name = request.path_params["name"]
        if ":" in name and name.split(":", 1)[0] in server.models:
            return error(
                405,
                f"{request.method} is not allowed on {request.url.path}; use POST",
                {"Allow": "POST"},
            )
        if name not in server.models:
            return error(404, f"no model '{name}'; serving: {', '.join(sorted(server.models))}")
        return JSONResponse(server.describe(name))

    async def healthz(request: Request):
        return JSONResponse({"status": "ok", "models": sorted(server.models)})

    async def metrics(request: Request):
        return PlainTextResponse(server.metrics.text(), media_type="text/plain; version=0.0.4")

    async def v2_server(request: Request):
        return JSONResponse(
            {"name": "specc", "version": _version(), "extensions": ["binary_tensor_data"]}
        )

    async def v2_live(request: Request):
        return JSONResponse({"live": True})

    async def v2_ready(request: Request):
        return JSONResponse({"ready": server.ready}, status_code=200 if server.ready else 503)

    async def v2_model(request: Request):
        name = request.path_params["name"]
        try:
            _check_version(request)
            return JSONResponse(_v2_metadata(name, server.get(name)))
        except HttpError as e:
            return error(e.status, e.message)

    async def v2_model_ready(request: Request):
        name = request.path_params["name"]
        try:
            _check_version(request)
            server.get(name)
        except HttpError as e:
            return error(e.status, e.message)
        return JSONResponse({"name": name, "ready": server.ready}, status_code=200)

    async def http_error(request: Request, exc: HTTPException):
        """Starlette's own answers (no such route, a method a route does not take) as JSON."""
        if exc.status_code == 405:
            allowed = (exc.headers or {}).get("Allow", "")
            message = f"{request.method} is not allowed on {request.url.path}; allowed: {allowed}"
        elif exc.status_code == 404:
            message = f"no route {request.url.path}; see /v1/models, /v2/models/NAME, /healthz"
        else:
            message = exc.detail
        return error(exc.status_code, message, exc.headers)

    async def crashed(request: Request, exc: Exception):
        status, message = _status_of(exc)
        return error(status, message)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        await server.startup()
        yield
        await server.shutdown()

    post = ["POST"]
    app = Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/metrics", metrics),
            Route("/v1/models", models),
            Route("/v1/models/{name}:predict", predict, methods=post),
            Route("/v1/models/{name}:generate", generate, methods=post),
            Route("/v1/models/{name}:translate", translate, methods=post),
            Route("/v1/models/{name}", model),
            Route("/v2", v2_server),
            Route("/v2/health/live", v2_live),
            Route("/v2/health/ready", v2_ready),
            Route("/v2/models/{name}/infer", v2_infer, methods=post),
            Route("/v2/models/{name}/versions/{version}/infer", v2_infer, methods=post),
            Route("/v2/models/{name}/ready", v2_model_ready),
            Route("/v2/models/{name}/versions/{version}/ready", v2_model_ready),
            Route("/v2/models/{name}", v2_model),
            Route("/v2/models/{name}/versions/{version}", v2_model),
        ],
        exception_handlers={HTTPException: http_error, Exception: crashed},
        lifespan=lifespan,
    )
    return AccessLog(app) if access_log else app


def load_models(
    paths: list[Path],
    device: str = "auto",
    threads: int | None = None,
    names: list[str] | None = None,
) -> tuple[dict[str, Model], dict]:
    """The models and, for language and seq2seq models, what writes their text; each named
    after its folder (or file stem), or by `names` in order; names must be distinct."""
    from .generate import LanguageModel
    from .translate import Seq2Seq

    if names and len(names) != len(paths):
        raise SpeccRuntimeError(
            f"{len(names)} --name for {len(paths)} model(s): give one name per model, in order"
        )
    models: dict[str, Model] = {}
    writers: dict = {}
    for k, p in enumerate(paths):
        p = Path(p)
        name = names[k] if names else ((p.name if p.is_dir() else p.stem) or "model")
        if not NAME.match(name):
            raise SpeccRuntimeError(
                f"cannot serve a model as '{name}': a name takes letters, digits, '.', '_' and "
                "'-' (and starts with a letter or digit); give one with --name"
            )
        if name in models:
            raise SpeccRuntimeError(
                f"two models would be served as '{name}': rename a folder or give --name"
            )
        models[name] = Model(p, device=device, threads=threads)
        if p.is_dir() and (p / "step.onnx").is_file():
            if (p / "encoder.onnx").is_file():
                writers[name] = Seq2Seq(p, device=device, threads=threads)
            else:
                writers[name] = LanguageModel(p, device=device, threads=threads)
    return models, writers


def require_server_packages() -> None:
    """The serve extra's packages, or a message that says which extra installs them."""
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as e:
        missing = e.name or str(e)
        raise SpeccRuntimeError(
            f"specc serve needs the 'serve' extra ({missing} is not installed): "
            "pip install 'specc[serve]'"
        ) from None


def serve(
    paths: list[Path],
    host="127.0.0.1",
    port=8000,
    device="auto",
    threads=None,
    names: list[str] | None = None,
    quiet: bool = False,
    **options,
) -> None:
    import socket

    require_server_packages()
    import warnings

    import uvicorn

    from .errors import PositionLimitWarning

    # an answer's `stop` says it; the log would repeat it for every such request
    warnings.filterwarnings("ignore", category=PositionLimitWarning)

    with socket.socket() as probe:  # say it plainly before loading anything
        try:
            probe.bind((host, port))
        except OSError as e:
            raise SpeccRuntimeError(f"cannot listen on {host}:{port}: {e.strerror}") from None
    models, writers = load_models(paths, device, threads, names)
    server = Server(models, writers=writers, **options)
    config = uvicorn.Config(
        create_app(server, access_log=not quiet),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=30,
        lifespan="on",
    )
    shown = ", ".join(
        f"{name} ({m.device}; {', '.join(':' + v for v in server.verbs(name))})"
        for name, m in sorted(server.models.items())
    )
    batching = "on" if server.batching else "off"
    print(f"serving {shown} on http://{host}:{port} (batching {batching})", flush=True)
    uvicorn.Server(config).run()
