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

Concurrent requests to one model are gathered into one ONNX Runtime call: whatever queued up
while the previous call ran (up to `max_batch` examples; `max_wait_ms` > 0 also waits that long
for company). Each request gets exactly its own rows back. Requests that could never be batched together (different dynamic dims) run separately.
Bad requests get a 4xx whose body says what is wrong. On SIGTERM/SIGINT the server stops
accepting, finishes what is in flight, then exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import InputError, SpeccRuntimeError
from .session import Model

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
NPY = "application/x-npy"


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
        names = list(batch[0][0])
        feeds = {k: np.concatenate([f[k] for f, _ in batch]) for k in names}
        self.sizes.observe(_rows(feeds))
        try:
            out = await asyncio.to_thread(self.model.run, **feeds)
        except Exception as e:  # one failed run answers every request in it
            for _, future in batch:
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
        key = tuple((k, v.shape[1:]) for k, v in item[0].items())
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
    ):
        self.models, self.max_batch, self.max_wait_ms = models, max_batch, max_wait_ms
        self.batching, self.max_request_bytes = batching, max_request_bytes
        self.metrics = Metrics()
        self.batchers: dict[str, Batcher] = {}

    # -- lifecycle

    async def startup(self) -> None:
        if self.batching:
            for name, model in self.models.items():
                hist = self.metrics.batch.setdefault(name, Histogram(BATCH_BUCKETS))
                self.batchers[name] = Batcher(model, self.max_batch, self.max_wait_ms, hist)
                self.batchers[name].start()

    async def shutdown(self) -> None:
        for b in self.batchers.values():
            await b.drain()

    # -- requests

    def describe(self, name: str) -> dict:
        m = self.models[name]
        return {
            "name": name,
            "task": m.task,
            "labels": m.labels,
            "device": m.device,
            "inputs": [
                {"name": i.name, "dtype": i.dtype, "shape": list(i.shape)} for i in m.inputs
            ],
            "outputs": [
                {"name": o.name, "dtype": o.dtype, "shape": list(o.shape)} for o in m.outputs
            ],
        }

    async def predict(self, name: str, body: bytes, content_type: str) -> dict[str, np.ndarray]:
        model = self.models.get(name)
        if model is None:
            raise HttpError(404, f"no model '{name}'; serving: {', '.join(sorted(self.models))}")
        feeds = _parse(model, body, content_type)
        try:
            feeds = model.check_inputs(feeds)
        except InputError as e:
            raise HttpError(400, str(e)) from None
        if self.batching:
            return await self.batchers[name].submit(feeds)
        return await asyncio.to_thread(model.run, **feeds)


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
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise HttpError(400, f"the body is not JSON: {e}") from None
    if not isinstance(doc, dict) or "inputs" not in doc:
        raise HttpError(400, 'expected a JSON object {"inputs": ...}')
    inputs = doc["inputs"]
    if not isinstance(inputs, dict):
        if len(model.inputs) != 1:
            raise HttpError(400, 'this model has several inputs: send {"inputs": {name: values}}')
        inputs = {model.inputs[0].name: inputs}
    declared = {i.name: i.dtype for i in model.inputs}
    feeds = {}
    for k, v in inputs.items():
        try:
            arr = np.asarray(v)
        except ValueError as e:
            raise HttpError(400, f"input '{k}' is not a rectangular array: {e}") from None
        if arr.dtype == object or arr.dtype.kind not in "iuf":
            raise HttpError(400, f"input '{k}' must be a rectangular array of numbers")
        want = np.dtype(declared.get(k, arr.dtype))
        if want.kind in "iu" and arr.dtype.kind == "f" and not np.all(arr == np.round(arr)):
            raise HttpError(400, f"input '{k}' takes integers ({want}), got fractions")
        feeds[k] = arr.astype(want)  # JSON has no dtypes: numbers take the declared one
    return feeds


def _answer(model: Model, out: dict[str, np.ndarray]) -> dict:
    doc = {"outputs": {k: v.tolist() for k, v in out.items()}}
    predictions = model.predictions_from(out[model.outputs[0].name])
    if predictions is not None:
        doc["predictions"] = predictions.rows()
    return doc


def create_app(server: Server):
    from starlette.applications import Starlette
    from starlette.requests import ClientDisconnect, Request
    from starlette.responses import JSONResponse, PlainTextResponse, Response
    from starlette.routing import Route

    async def read_body(request: Request) -> bytes:
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

    async def predict(request: Request):
        name = request.path_params["name"]
        start = time.perf_counter()
        status = 200
        try:
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
        except HttpError as e:
            status = e.status
            return JSONResponse({"error": e.message}, status_code=e.status)
        except SpeccRuntimeError as e:
            status = 400
            return JSONResponse({"error": str(e)}, status_code=400)
        except ClientDisconnect:
            status = 499
            return Response(status_code=499)
        finally:
            server.metrics.record(
                name if name in server.models else "unknown", status, time.perf_counter() - start
            )

    async def models(request: Request):
        return JSONResponse({"models": [server.describe(n) for n in sorted(server.models)]})

    async def model(request: Request):
        name = request.path_params["name"]
        if name not in server.models:
            return JSONResponse({"error": f"no model '{name}'"}, status_code=404)
        return JSONResponse(server.describe(name))

    async def healthz(request: Request):
        return JSONResponse({"status": "ok", "models": sorted(server.models)})

    async def metrics(request: Request):
        return PlainTextResponse(server.metrics.text(), media_type="text/plain; version=0.0.4")

    @contextlib.asynccontextmanager
    async def lifespan(app):
        await server.startup()
        yield
        await server.shutdown()

    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/metrics", metrics),
            Route("/v1/models", models),
            Route("/v1/models/{name}:predict", predict, methods=["POST"]),
            Route("/v1/models/{name}", model),
        ],
        lifespan=lifespan,
    )


def load_models(
    paths: list[Path], device: str = "auto", threads: int | None = None
) -> dict[str, Model]:
    """Name each model after its folder (or file stem); names must be distinct."""
    models: dict[str, Model] = {}
    for p in paths:
        p = Path(p)
        name = (p.name if p.is_dir() else p.stem) or "model"
        if name in models:
            raise SpeccRuntimeError(f"two models would be served as '{name}': rename a folder")
        models[name] = Model(p, device=device, threads=threads)
    return models


def serve(
    paths: list[Path], host="127.0.0.1", port=8000, device="auto", threads=None, **options
) -> None:
    import socket

    import uvicorn

    with socket.socket() as probe:  # say it plainly before loading anything
        try:
            probe.bind((host, port))
        except OSError as e:
            raise SpeccRuntimeError(f"cannot listen on {host}:{port}: {e.strerror}") from None
    server = Server(load_models(paths, device, threads), **options)
    config = uvicorn.Config(
        create_app(server),
        host=host,
        port=port,
        log_level="warning",
        timeout_graceful_shutdown=30,
        lifespan="on",
    )
    shown = ", ".join(f"{name} ({m.device})" for name, m in sorted(server.models.items()))
    batching = "on" if server.batching else "off"
    print(f"serving {shown} on http://{host}:{port} (batching {batching})", flush=True)
    uvicorn.Server(config).run()
