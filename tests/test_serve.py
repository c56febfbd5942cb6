"""`specc serve` as a real server on loopback: JSON and .npy, validation answers, limits,
micro-batching that returns every request exactly its own rows, several models, metrics, and a
graceful shutdown that finishes what is in flight."""

from __future__ import annotations

import io
import json
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
import torch
from helpers import SPECC

import specc.runtime as sr
from specc.compiler import codegen
from specc.compiler import export as ex
from specc.compiler.pipeline import compile_file

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

SPEC = """\
specc: 1
name: {name}
task: {task}
inputs: {{x: {{shape: [6]}}}}
model:
  - {{type: linear, out_features: 8}}
  - tanh
  - {{type: linear, out_features: {out}}}
"""


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("served")
    made = {}
    for name, task, out, labels in (
        ("clf", "classification", 3, ["r", "g", "b"]),
        ("reg", "regression", 2, None),
    ):
        folder = root / name
        folder.mkdir()
        (folder / "s.yaml").write_text(SPEC.format(name=name, task=task, out=out))
        compiled = compile_file(folder / "s.yaml")
        codegen.write(compiled, folder)
        torch.manual_seed(len(name))
        ex.export(ex.instantiate(folder), compiled.ir, folder / "model.onnx", labels=labels)
        made[name] = folder
    return made


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Running:
    def __init__(self, *args):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [SPECC, "serve", *map(str, args), "--port", str(self.port), "--device", "cpu"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                self.get("/healthz")
                return
            except OSError:
                assert self.proc.poll() is None, self.proc.communicate()
                time.sleep(0.1)
        raise AssertionError("the server did not come up")

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path):
        with urllib.request.urlopen(self.url(path), timeout=10) as r:
            return r.status, r.read()

    def post(self, path, body: bytes, content_type="application/json", accept="application/json"):
        req = urllib.request.Request(
            self.url(path), data=body, headers={"Content-Type": content_type, "Accept": accept}
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def predict(self, name, x):
        status, body = self.post(
            f"/v1/models/{name}:predict", json.dumps({"inputs": x.tolist()}).encode()
        )
        return status, json.loads(body)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)


@pytest.fixture
def server(models):
    running = Running(
        models["clf"], models["reg"], "--max-wait-ms", "20", "--max-request-mb", "0.01"
    )
    yield running
    running.stop()


def test_json_npy_and_model_listing(server, models):
    x = np.random.default_rng(0).normal(size=(4, 6)).astype(np.float32)
    local = sr.load(models["clf"])
    status, doc = server.predict("clf", x)
    assert status == 200
    np.testing.assert_allclose(doc["outputs"]["logits"], local(x), atol=1e-6)
    assert [p["label"] for p in doc["predictions"]] == local.predict(x).labels
    status, doc = server.predict("reg", x)
    np.testing.assert_allclose(doc["outputs"]["prediction"], sr.load(models["reg"])(x), atol=1e-6)
    assert "predictions" not in doc
    buf = io.BytesIO()
    np.save(buf, x)
    status, body = server.post(
        "/v1/models/clf:predict", buf.getvalue(), "application/x-npy", "application/x-npy"
    )
    assert status == 200
    np.testing.assert_allclose(np.load(io.BytesIO(body)), local(x), atol=1e-6)
    listing = json.loads(server.get("/v1/models")[1])["models"]
    assert [m["name"] for m in listing] == ["clf", "reg"]
    assert listing[0]["inputs"] == [{"name": "x", "dtype": "float32", "shape": ["batch", 6]}]
    assert json.loads(server.get("/healthz")[1]) == {"status": "ok", "models": ["clf", "reg"]}


def test_bad_requests_get_4xx_that_say_what_is_wrong(server):
    cases = [
        (
            "/v1/models/nope:predict",
            b'{"inputs": [[1,2,3,4,5,6]]}',
            404,
            "no model 'nope'; serving: clf, reg",
        ),
        ("/v1/models/clf:predict", b"{not json", 400, "the body is not JSON"),
        ("/v1/models/clf:predict", b'{"x": 1}', 400, 'expected a JSON object {"inputs": ...}'),
        (
            "/v1/models/clf:predict",
            b'{"inputs": [[1,2,3]]}',
            400,
            "input 'x': expected shape (batch, 6), got (1, 3)",
        ),
        ("/v1/models/clf:predict", b'{"inputs": [[1,2],[3]]}', 400, "is not a rectangular array"),
        (
            "/v1/models/clf:predict",
            b'{"inputs": [["a","b","c","d","e","f"]]}',
            400,
            "must be a rectangular array of numbers",
        ),
        (
            "/v1/models/clf:predict",
            b'{"inputs": {"y": [[1,2,3,4,5,6]]}}',
            400,
            "unknown input 'y'; missing input 'x'",
        ),
        ("/v1/models/clf:predict", b"x" * 20000, 413, "over the limit of 10485 bytes"),
    ]
    for path, body, status, message in cases:
        got, answer = server.post(path, body)
        assert got == status, (path, body[:40], answer)
        assert message in json.loads(answer)["error"], answer
    status, answer = server.post("/v1/models/clf:predict", b"not npy", "application/x-npy")
    assert status == 400 and "not a .npy array" in json.loads(answer)["error"]
    metrics = server.get("/metrics")[1].decode()
    assert 'specc_requests_total{model="clf",code="400"} 7' in metrics
    assert 'specc_requests_total{model="unknown",code="404"} 1' in metrics


def test_concurrent_requests_are_batched_and_each_gets_its_own_rows(server, models):
    local = sr.load(models["clf"])
    rng = np.random.default_rng(1)
    batches = [rng.normal(size=(1 + i % 3, 6)).astype(np.float32) for i in range(24)]
    answers: dict[int, dict] = {}

    def send(i):
        answers[i] = server.predict("clf", batches[i])

    threads = [threading.Thread(target=send, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, x in enumerate(batches):
        status, doc = answers[i]
        assert status == 200
        np.testing.assert_allclose(doc["outputs"]["logits"], local(x), atol=1e-5)
    metrics = server.get("/metrics")[1].decode()
    count = float(metrics.split('specc_batch_size_count{model="clf"} ')[1].split()[0])
    total = float(metrics.split('specc_batch_size_sum{model="clf"} ')[1].split()[0])
    assert total == sum(len(b) for b in batches)  # every row ran exactly once
    assert count < 24  # and requests shared runs
    assert 'specc_requests_total{model="clf",code="200"} 24' in metrics
    assert 'specc_request_seconds_count{model="clf"} 24' in metrics


def test_graceful_shutdown_finishes_requests_in_flight(models):
    running = Running(models["clf"], "--max-wait-ms", "1500")
    x = np.ones((2, 6), np.float32)
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("answer", running.predict("clf", x)))
    t.start()
    time.sleep(0.4)  # the request now waits in the batcher for company
    assert running.proc.poll() is None
    running.proc.send_signal(signal.SIGTERM)
    t.join(timeout=30)
    status, doc = result["answer"]
    assert status == 200
    np.testing.assert_allclose(doc["outputs"]["logits"], sr.load(models["clf"])(x), atol=1e-5)
    # uvicorn ends by re-raising the signal it was sent, as servers conventionally do
    assert running.proc.wait(timeout=30) in (0, -signal.SIGTERM)
    assert "Traceback" not in running.proc.stderr.read()


def test_serve_refuses_what_it_cannot_serve(models, tmp_path):
    proc = subprocess.run(
        [SPECC, "serve", tmp_path, "--port", "0"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 1 and "expected model.onnx in that folder" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_busy_port_is_one_clear_message(models):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = subprocess.run(
            [SPECC, "serve", models["clf"], "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 1 and f"cannot listen on 127.0.0.1:{port}" in proc.stderr
    assert "Traceback" not in proc.stderr
