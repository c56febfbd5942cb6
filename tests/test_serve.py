"""`specc serve` as a real server on loopback: JSON and .npy, validation answers, limits,
micro-batching that returns every request exactly its own rows, several models, metrics, and a
graceful shutdown that finishes what is in flight."""

from __future__ import annotations

import http.client
import io
import json
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import SPECC, specc_env

import specc.runtime as sr
from specc.compiler import codegen
from specc.compiler import export as ex
from specc.compiler.pipeline import compile_file
from specc.runtime.contracts import Meta

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
    """`specc serve` in a subprocess; its output goes to files (a pipe nobody reads would fill
    up with access-log lines and stall the server)."""

    def __init__(self, *args, env=None):
        self.port = free_port()
        self.logs = tempfile.TemporaryDirectory()
        self.out = open(Path(self.logs.name) / "stdout", "w+")  # noqa: SIM115
        self.err = open(Path(self.logs.name) / "stderr", "w+")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [SPECC, "serve", *map(str, args), "--port", str(self.port), "--device", "cpu"],
            stdout=self.out,
            stderr=self.err,
            text=True,
            env=specc_env(env),
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                self.get("/healthz")
                return
            except OSError:
                assert self.proc.poll() is None, self.stderr()
                time.sleep(0.1)
        raise AssertionError("the server did not come up")

    def stdout(self) -> str:
        return (Path(self.logs.name) / "stdout").read_text()

    def stderr(self) -> str:
        return (Path(self.logs.name) / "stderr").read_text()

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path):
        with urllib.request.urlopen(self.url(path), timeout=10) as r:
            return r.status, r.read()

    def request(self, method, path, body: bytes | None = None, headers=None):
        req = urllib.request.Request(
            self.url(path), data=body, method=method, headers=headers or {}
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def post(self, path, body: bytes, content_type="application/json", accept="application/json"):
        status, _, answer = self.request(
            "POST", path, body, {"Content-Type": content_type, "Accept": accept}
        )
        return status, answer

    def predict(self, name, x):
        status, body = self.post(
            f"/v1/models/{name}:predict", json.dumps({"inputs": x.tolist()}).encode()
        )
        return status, json.loads(body)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=60)
        self.out.close()
        self.err.close()
        return code


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
    assert running.stop() in (0, -signal.SIGTERM)
    assert "Traceback" not in running.stderr()


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


# ----------------------------------------------------------------------------- under attack

TOKENS = """\
specc: 1
name: tokens
task: classification
inputs:
  words: {shape: [time], dtype: int64}
  lengths: {shape: [], dtype: int64}
labels: [neg, pos]
model:
  - {type: embedding, num_embeddings: 20, embedding_dim: 8, padding_idx: 0}
  - {type: gru, hidden_size: 8, output: last, lengths: lengths}
  - {type: linear, out_features: 2}
"""


@pytest.fixture(scope="module")
def two_inputs(tmp_path_factory):
    """A two-input text classifier like sentiment_gru (ids, lengths; 20 token ids): `recorded`
    carries Meta.TOKEN_IDS as the exporter writes it, `unrecorded` does not, so out-of-range
    ids pass the checks and fail inside ONNX Runtime, in a batch with others."""
    root = tmp_path_factory.mktemp("tokens")
    (root / "tokens.yaml").write_text(TOKENS)
    compiled = compile_file(root / "tokens.yaml")
    codegen.write(compiled, root)
    torch.manual_seed(0)
    model = ex.instantiate(root)
    made = {}
    for name, extra in (
        ("recorded", {Meta.TOKEN_IDS: json.dumps({"words": 20})}),
        ("unrecorded", {}),
    ):
        (root / name).mkdir()
        ex.export(
            model, compiled.ir, root / name / "model.onnx", labels=["neg", "pos"], extra=extra
        )
        made[name] = root / name
    return made


# What the attackers send, and the words each answer must hold.
ATTACKS = [
    (b'{"inputs": {"words": [[4, 5, 20]], "lengths": [3]}}', "token id 20"),
    (b'{"inputs": {"words": [[4, 5, 6], [7, 8, 9]], "lengths": [3, 3, 3]}}', "batch size"),
    (b'{"inputs": {"words": [[4, -5, 6]], "lengths": [3]}}', "token id -5"),
    (b'{"inputs": {"words": [[4, 5, 6]], "lengths": [0]}}', "the length 0"),
    (b'{"inputs": {"words": [[4, 5, 6]], "lengths": [1000000]}}', "the length 1000000"),
    (b'{"inputs": {"words": [[4, 5, NaN]], "lengths": [3]}}', "NaN is not a JSON number"),
    (b'{"inputs": ' + b"[" * 2000 + b"]" * 2000 + b"}", "nested too deeply"),
    (b'{"inputs": {"words": [[1e30]], "lengths": [1]}}', "too large for int64"),
]
OUT_OF_RANGE = [  # what passes the checks of a model that does not record its token ids
    (b'{"inputs": {"words": [[4, 5, 20]], "lengths": [3]}}', "out of data bounds"),
    (b'{"inputs": {"words": [[400, 5], [4, 5]], "lengths": [2, 2]}}', "out of data bounds"),
]


def hammer(port: int, valid: list, attacks: list, clients: int, attackers: int, seconds: float):
    """`clients` threads send the valid requests (each its share), `attackers` threads send the
    attacks over and over until the valid ones are done; keep-alive connections, every answer
    kept. Bounded: socket timeouts and a deadline."""
    answers: dict[int, tuple] = {}
    attacked: list[tuple] = []
    done = threading.Event()
    deadline = time.monotonic() + seconds

    def connect():
        return http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def send(conn, body):
        conn.request("POST", "/v1/models/model:predict", body, {"Content-Type": "application/json"})
        r = conn.getresponse()
        return r.status, r.read()

    def client(k):
        conn = connect()
        for i in range(k, len(valid), clients):
            if time.monotonic() > deadline:
                return
            try:
                answers[i] = send(conn, valid[i][0])
            except OSError as e:  # a reset: a failure like any other
                answers[i] = (0, repr(e).encode())
                conn = connect()

    def attacker(k):
        conn, n = connect(), k
        while not done.is_set() and time.monotonic() < deadline:
            body, words = attacks[n % len(attacks)]
            try:
                attacked.append((*send(conn, body), words))
            except OSError as e:
                attacked.append((0, repr(e).encode(), words))
                conn = connect()
            n += 1

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    bad = [threading.Thread(target=attacker, args=(k,)) for k in range(attackers)]
    start = time.perf_counter()
    for t in bad + threads:
        t.start()
    for t in threads:
        t.join(timeout=max(1.0, deadline - time.monotonic() + 5))
    done.set()
    for t in bad:
        t.join(timeout=30)
    return answers, attacked, time.perf_counter() - start


@pytest.mark.parametrize("graph", ["recorded", "unrecorded"])
def test_attackers_among_clients_fail_alone(two_inputs, graph):
    """32 clients send 960 valid requests while 4 attackers send bad ones to the same model,
    batching on: no valid request fails, each gets its own rows (checked against the model
    run locally), and every attack gets a 4xx that names its problem. With `unrecorded` the
    out-of-range ids reach ONNX Runtime inside a batch: the batch is split and only the
    attacker's request fails."""
    folder = two_inputs[graph]
    local = sr.load(folder)
    rng = np.random.default_rng(0)
    valid = []
    for _ in range(960):
        n, t = int(rng.integers(1, 4)), int(rng.choice([3, 5]))
        words = rng.integers(1, 20, size=(n, t))
        lengths = rng.integers(1, t + 1, size=n)
        body = json.dumps({"inputs": {"words": words.tolist(), "lengths": lengths.tolist()}})
        valid.append((body.encode(), local.run(words=words, lengths=lengths)["logits"]))
    attacks = ATTACKS
    if graph == "unrecorded":  # id 20 passes the checks, and fails in onnxruntime
        attacks = [(b, "out of data bounds" if w == "token id 20" else w) for b, w in ATTACKS]
        attacks += OUT_OF_RANGE
    running = Running(folder, "--name", "model", "--max-wait-ms", "2", "--quiet")
    try:
        answers, attacked, _ = hammer(running.port, valid, attacks, 32, 4, seconds=240)
        metrics = running.get("/metrics")[1].decode()
    finally:
        running.stop()
    failed = [(i, a) for i, a in answers.items() if a[0] != 200]
    assert len(answers) == 960 and not failed, failed[:3]
    for i, (_, body) in answers.items():
        np.testing.assert_allclose(json.loads(body)["outputs"]["logits"], valid[i][1], atol=1e-5)
    assert len(attacked) >= len(attacks)
    for status, body, words in attacked:
        assert 400 <= status < 500, (status, body[:200])
        assert words in json.loads(body)["error"], body[:200]
    count = float(metrics.split('specc_batch_size_count{model="model"} ')[1].split()[0])
    assert count < 960  # requests did share runs
    assert 'specc_requests_total{model="model",code="200"} 960' in metrics
    if graph == "unrecorded":  # ids 20 and 400 reached onnxruntime, in batches, and failed alone
        assert any("out of data bounds" in json.loads(b)["error"] for _, b, _ in attacked)


# ----------------------------------------------------------------------------- answers

LINEAR = """\
specc: 1
name: lin
task: regression
inputs: {x: {shape: [2]}}
model:
  - {type: linear, out_features: 2}
"""


def test_json_edges_get_clear_answers(tmp_path):
    """A NaN literal, nesting 2,000 deep, NaN or infinite outputs (JSON numbers cannot hold
    them: strings, as proto3's JSON mapping writes them), methods and routes that are not
    served (JSON 405 and 404), and the access log."""
    (tmp_path / "lin.yaml").write_text(LINEAR)
    compiled = compile_file(tmp_path / "lin.yaml")
    codegen.write(compiled, tmp_path)
    model = ex.instantiate(tmp_path)
    with torch.no_grad():
        model.linear_1.weight.copy_(torch.tensor([[1.0, 1.0], [1.0, -1.0]]))
        model.linear_1.bias.zero_()
    ex.export(model, compiled.ir, tmp_path / "lin" / "model.onnx")
    running = Running(tmp_path / "lin")
    try:
        status, doc = running.predict("lin", np.array([[1.0, 2.0], [3e38, 3e38]]))
        assert status == 200
        assert doc["outputs"]["prediction"] == [[3.0, -1.0], ["Infinity", 0.0]]
        status, answer = running.post("/v1/models/lin:predict", b'{"inputs": [[NaN, 1]]}')
        assert status == 400 and "NaN is not a JSON number" in json.loads(answer)["error"]
        status, answer = running.post("/v1/models/lin:predict", b'{"inputs": [[Infinity, 1]]}')
        assert status == 400 and "Infinity is not a JSON number" in json.loads(answer)["error"]
        deep = b'{"inputs": ' + b"[" * 2000 + b"]" * 2000 + b"}"
        status, answer = running.post("/v1/models/lin:predict", deep)
        assert status == 400 and "nested too deeply" in json.loads(answer)["error"]
        for depth, message in ((40, "expected shape (batch, 2)"), (100, "maximum number of dim")):
            deep = b'{"inputs": ' + b"[" * depth + b"1" + b"]" * depth + b"}"
            status, answer = running.post("/v1/models/lin:predict", deep)
            assert status == 400 and message in json.loads(answer)["error"], answer
        for method, path, allowed in (
            ("PUT", "/v1/models/lin:predict", "POST"),
            ("DELETE", "/v1/models/lin:predict", "POST"),
            ("POST", "/healthz", "GET, HEAD"),
            ("POST", "/v1/models/lin", "GET, HEAD"),
            ("GET", "/v1/models/lin:predict", "POST"),
            ("PATCH", "/v2/models/lin/infer", "POST"),
        ):
            status, headers, body = running.request(method, path, b"{}")
            assert status == 405, (method, path)
            assert headers["content-type"] == "application/json"
            assert f"{method} is not allowed on {path}" in json.loads(body)["error"]
            assert set(headers["allow"].split(", ")) == set(allowed.split(", "))
        status, headers, body = running.request("GET", "/v3/nothing")
        assert status == 404 and "no route /v3/nothing" in json.loads(body)["error"]
    finally:
        running.stop()
    log = running.stdout()
    assert '"POST /v1/models/lin:predict HTTP/1.1" 200 ' in log
    assert '"PUT /v1/models/lin:predict HTTP/1.1" 405 ' in log
    assert "Traceback" not in running.stderr()
    quiet = Running(tmp_path / "lin", "--quiet")
    try:
        assert quiet.predict("lin", np.ones((1, 2)))[0] == 200
    finally:
        quiet.stop()
    assert "HTTP/1.1" not in quiet.stdout()


def test_names_and_the_missing_extra(models):
    running = Running(models["clf"], models["reg"], "--name", "alpha", "--name", "beta")
    try:
        x = np.ones((1, 6), np.float32)
        assert running.predict("alpha", x)[0] == 200 and running.predict("beta", x)[0] == 200
        status, doc = running.predict("clf", x)
        assert status == 404 and doc["error"] == "no model 'clf'; serving: alpha, beta"
    finally:
        running.stop()
    for names, message in (
        (["--name", "a:b"], "cannot serve a model as 'a:b'"),
        (["--name", "a", "--name", "b", "--name", "c"], "3 --name for 1 model(s)"),
    ):
        proc = subprocess.run(
            [SPECC, "serve", models["clf"], *names, "--port", "0"],
            capture_output=True,
            text=True,
            timeout=60,
            env=specc_env(),
        )
        assert proc.returncode == 1 and message in proc.stderr, proc.stderr
    # without the serve extra: which extra to install, exit 1 (uvicorn's import is blocked)
    blocked = (
        "import sys; sys.modules['uvicorn'] = None; from specc.compiler.cli import main; "
        f"sys.exit(main(['serve', {str(models['clf'])!r}, '--port', '0']))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", blocked], capture_output=True, text=True, timeout=60, env=specc_env()
    )
    assert proc.returncode == 1, proc.stderr
    assert "specc serve needs the 'serve' extra (uvicorn is not installed)" in proc.stderr
    assert "pip install 'specc[serve]'" in proc.stderr and "internal error" not in proc.stderr


# ----------------------------------------------------------------------------- Open Inference Protocol


def test_open_inference_protocol_with_tritonclient(server, models):
    """KServe v2 through tritonclient, a client written elsewhere: health, metadata, binary
    and JSON tensors, and errors."""
    http_client = pytest.importorskip("tritonclient.http")
    from tritonclient.utils import InferenceServerException

    client = http_client.InferenceServerClient(f"127.0.0.1:{server.port}")
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("clf") and not client.is_model_ready("nope")
    assert client.get_server_metadata()["extensions"] == ["binary_tensor_data"]
    meta = client.get_model_metadata("clf")
    assert meta["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 6]}]
    assert meta["outputs"] == [{"name": "logits", "datatype": "FP32", "shape": [-1, 3]}]
    local = sr.load(models["clf"])
    x = np.random.default_rng(3).normal(size=(5, 6)).astype(np.float32)
    for binary in (True, False):
        tensor = http_client.InferInput("x", list(x.shape), "FP32")
        tensor.set_data_from_numpy(x, binary_data=binary)
        out = http_client.InferRequestedOutput("logits", binary_data=binary)
        result = client.infer("clf", [tensor], outputs=[out], request_id="r1")
        np.testing.assert_allclose(result.as_numpy("logits"), local(x), atol=1e-6)
        assert result.get_response()["id"] == "r1"
    result = client.infer("clf", [tensor], model_version="1")  # all outputs, binary by default
    np.testing.assert_allclose(result.as_numpy("logits"), local(x), atol=1e-6)
    tensor = http_client.InferInput("x", [1, 3], "FP32")
    tensor.set_data_from_numpy(np.ones((1, 3), np.float32))
    with pytest.raises(InferenceServerException, match=r"expected shape \(batch, 6\)") as caught:
        client.infer("clf", [tensor])
    assert caught.value.status() == "400"
    with pytest.raises(InferenceServerException, match="no model 'nope'"):
        client.infer("nope", [tensor])
    with pytest.raises(InferenceServerException, match="no version '7'"):
        client.infer("clf", [tensor], model_version="7")
    # the raw protocol: nested JSON data, a shape that disagrees, an unknown datatype
    body = {
        "inputs": [{"name": "x", "shape": [1, 6], "datatype": "FP32", "data": [[1, 2, 3, 4, 5, 6]]}]
    }
    status, answer = server.post("/v2/models/clf/infer", json.dumps(body).encode())
    doc = json.loads(answer)
    assert status == 200 and doc["model_name"] == "clf" and doc["outputs"][0]["shape"] == [1, 3]
    want = local(np.arange(1, 7, dtype=np.float32)[None])
    np.testing.assert_allclose(doc["outputs"][0]["data"], want.ravel(), atol=1e-6)
    for entry, message in (
        ({"shape": [2, 6]}, "6 values, but shape [2, 6] holds 12"),
        ({"datatype": "BYTES"}, "datatype 'BYTES' is not one this server reads"),
        ({"name": "y"}, "unknown input 'y'"),
    ):
        bad = {"inputs": [{**body["inputs"][0], **entry}]}
        status, answer = server.post("/v2/models/clf/infer", json.dumps(bad).encode())
        assert status == 400 and message in json.loads(answer)["error"], answer


# ----------------------------------------------------------------------------- text routes


@pytest.fixture(scope="module")
def writers(tmp_path_factory):
    """A language model (model.onnx and step.onnx) and a seq2seq model that never writes <eos>
    (model.onnx, encoder.onnx, step.onnx recording a learned decoder table of 5 positions)."""
    import yaml
    from test_decoding_limits import LM, ROWS, SEQ2SEQ, never_ends, with_metadata

    from specc.compiler.export import language_model as ex_lm
    from specc.compiler.export import seq2seq as ex2

    root = tmp_path_factory.mktemp("writers")
    (root / "lm.yaml").write_text(LM)
    compiled = compile_file(root / "lm.yaml")
    codegen.write(compiled, root / "lm")
    torch.manual_seed(0)
    model = ex.instantiate(root / "lm")
    vocab = compiled.text.vocab.to_json()
    ex.export(model, compiled.ir, root / "lm" / "model.onnx", vocab=vocab)
    ex_lm.export_step(model, compiled.ir, root / "lm" / "step.onnx", 20, vocab)

    (root / "pairs.tsv").write_text("ab\tba\nba\tab\naab\tbaa\nbb\taa\n", encoding="utf-8")
    (root / "s2s.yaml").write_text(yaml.safe_dump(SEQ2SEQ, sort_keys=False))
    compiled = compile_file(root / "s2s.yaml")
    codegen.write(compiled, root / "s2s")
    torch.manual_seed(0)
    model = ex.instantiate(root / "s2s")
    vocabs = {"source": compiled.text.source_vocab, "target": compiled.text.target_vocab}
    never_ends(model, len(vocabs["target"]))
    ex.export(model, compiled.ir, root / "s2s" / "model.onnx")
    ex2.export(
        model, compiled.ir, root / "s2s", 20, ex2.describe(compiled.ir, vocabs, {"target": 3})
    )
    with_metadata(root / "s2s" / "step.onnx", Meta.MAX_POSITIONS, str(ROWS))
    return root / "lm", root / "s2s"


@pytest.mark.filterwarnings("ignore::specc.runtime.PositionLimitWarning")
def test_generate_and_translate_routes(writers):
    lm_dir, s2s_dir = writers
    lm, s2s = sr.LanguageModel(lm_dir), sr.Seq2Seq(s2s_dir)
    running = Running(lm_dir, s2s_dir, "--max-tokens", "50")
    try:

        def call(name, verb, doc):
            status, answer = running.post(f"/v1/models/{name}:{verb}", json.dumps(doc).encode())
            return status, json.loads(answer)

        status, doc = call("lm", "generate", {"prompt": "he", "max_tokens": 6, "temperature": 0})
        want = lm.generate("he", max_tokens=6, temperature=0, details=True)
        assert status == 200 and doc == {
            "text": want.text,
            "tokens": len(want.tokens),
            "stop": want.stop,
        }
        options = {
            "prompt": "wo",
            "max_tokens": 8,
            "temperature": 0.9,
            "top_k": 5,
            "top_p": 0.9,
            "seed": 3,
        }
        status, doc = call("lm", "generate", options)
        assert status == 200 and doc["text"] == lm.generate(**options)
        status, doc = call("s2s", "translate", {"inputs": ["ab", "bba"]})
        assert status == 200 and doc["outputs"] == s2s.translate(["ab", "bba"])
        assert doc["stops"] == ["max_positions", "max_positions"]  # it never writes <eos>
        status, doc = call("s2s", "translate", {"inputs": ["ab"], "beam": 2, "length_penalty": 0.6})
        assert doc["outputs"] == [
            s2s.translate("ab", method="beam", beam_size=2, length_penalty=0.6)
        ]
        status, doc = call(
            "s2s", "translate", {"inputs": "ab", "sample": True, "seed": 4, "top_k": 3}
        )
        assert doc["outputs"] == [s2s.translate("ab", method="sample", seed=4, top_k=3)]
        status, doc = call("s2s", "translate", {"inputs": ["ab"], "max_len": 2})
        assert doc["stops"] == ["max_tokens"] and len(doc["outputs"][0]) == 2
        for name, verb, body, message in (
            ("lm", "generate", {"max_tokens": -1}, "max_tokens must be a whole number >= 0"),
            ("lm", "generate", {"max_tokens": 51}, "max_tokens is at most 50 on this server"),
            ("lm", "generate", {"temprature": 1}, "unknown option 'temprature'; allowed: prompt"),
            ("lm", "generate", {"prompt": "he?"}, "the prompt holds '?'"),
            ("lm", "generate", {"seed": -1}, "seed must be a whole number >= 0"),
            ("lm", "generate", {"top_p": 0}, "top_p must be in (0, 1]"),
            ("lm", "generate", {"top_k": "5"}, "'top_k' must be int"),
            (
                "lm",
                "translate",
                {"inputs": ["ab"]},
                "model 'lm' is a language_model model: it has no :translate",
            ),
            ("s2s", "translate", {"inputs": ["ab"], "beam": 2, "sample": True}, "give one"),
            ("s2s", "translate", {"inputs": ["aXb"]}, "not in the source vocabulary"),
            ("s2s", "translate", {"inputs": [1, 2]}, "must be a list of source texts"),
            ("s2s", "generate", {}, "it has no :generate (it answers :predict, :translate)"),
        ):
            status, doc = call(name, verb, body)
            assert status in (400, 404) and message in doc["error"], (body, doc)
        listing = json.loads(running.get("/v1/models")[1])["models"]
        assert [m["routes"] for m in listing] == [
            ["/v1/models/lm:predict", "/v1/models/lm:generate"],
            ["/v1/models/s2s:predict", "/v1/models/s2s:translate"],
        ]
    finally:
        running.stop()
    assert "Traceback" not in running.stderr()
