"""Load test of `specc serve` on loopback: throughput and p50/p99 latency at 1, 8 and 64
concurrent clients, with and without micro-batching. Bounded in count and time; every answer is
checked against the model run locally, and a lost or wrong answer fails the run.

    python bench/serve_load.py [--requests 1500] [--seconds 20] [--json out.json]
    python bench/serve_load.py --attack [--json out.json]

--attack: sentiment_gru (two inputs: word ids and lengths; fresh weights) with micro-batching on,
32 clients sending 960 valid requests while 4 attackers send bad ones (out-of-vocabulary and
negative ids, batch sizes that disagree across inputs, lengths 0 and 10^6, a NaN literal, JSON
nested 2,000 deep); then the same 960 without attackers. Reports how many valid requests failed
(and how), what the attackers got, and the valid requests' throughput and latency.

Clients are Python threads with one keep-alive HTTP connection each, in a separate process that
imports only the standard library (a client process that has imported torch or onnxruntime was
measured 2x slower per request here), on the same 2-core machine as the server: at 64 clients
they compete with it for the CPU, which is part of what is measured.
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPECC = str(Path(sys.executable).with_name("specc"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model_dir: Path, batching: bool) -> tuple[subprocess.Popen, int]:
    port = free_port()
    cmd = [SPECC, "serve", str(model_dir), "--port", str(port), "--device", "cpu"]
    cmd += ["--max-batch", "64", "--max-wait-ms", "2"] if batching else ["--no-batching"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start")


def _flat(v) -> list:
    return [u for item in v for u in (_flat(item) if isinstance(item, list) else [item])]


def close(a: list, b: list, tol: float = 1e-4) -> bool:
    return len(a) == len(b) and all(
        abs(u - v) <= tol for ra, rb in zip(a, b) for u, v in zip(ra, rb)
    )


def load(
    port: int, name: str, xs: list, want: list, clients: int, requests: int, seconds: float
) -> dict:
    """Standard library only (see the module docstring)."""
    latencies: list[float] = []
    errors: list[str] = []
    counter = {"next": 0}
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.monotonic() < stop_at:
            with lock:
                i = counter["next"]
                if i >= requests:
                    return
                counter["next"] += 1
            k = i % len(xs)
            body = json.dumps({"inputs": [xs[k]]})
            start = time.perf_counter()
            conn.request(
                "POST", f"/v1/models/{name}:predict", body, {"Content-Type": "application/json"}
            )
            resp = conn.getresponse()
            data = resp.read()
            elapsed = time.perf_counter() - start
            if resp.status != 200:
                errors.append(f"{resp.status}: {data[:100]!r}")
                continue
            got = json.loads(data)["outputs"]
            if not close([_flat(next(iter(got.values())))], [want[k]]):
                errors.append(f"wrong answer for example {k}")
                continue
            with lock:
                latencies.append(elapsed)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    sent = counter["next"]
    if errors or len(latencies) != sent:
        raise SystemExit(
            f"{len(errors)} bad answers and {sent - len(latencies) - len(errors)} lost of {sent}: {errors[:3]}"
        )
    ms = sorted(v * 1000 for v in latencies)
    return {
        "clients": clients,
        "requests": sent,
        "throughput_rps": sent / wall,
        "p50_ms": statistics.median(ms),
        "p99_ms": ms[min(len(ms) - 1, int(0.99 * len(ms)))],
    }


def attack(port: int, name: str, doc: dict, clients: int, attackers: int, seconds: float) -> dict:
    """Valid requests from `clients` threads while `attackers` threads send bad ones until the
    valid ones are done. Standard library only (see the module docstring)."""
    valid, attacks = doc["valid"], doc["attacks"]
    latencies: dict[int, float] = {}
    failures: list[str] = []
    got: dict[str, int] = {}
    misnamed: list[str] = []
    lock = threading.Lock()
    done = threading.Event()
    stop_at = time.monotonic() + seconds
    path = f"/v1/models/{name}:predict"

    def send(conn, body):
        conn.request("POST", path, body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, resp.read()

    def client(k):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for i in range(k, len(valid), clients):
            if time.monotonic() > stop_at:
                return
            start = time.perf_counter()
            try:
                status, data = send(conn, valid[i]["body"])
            except OSError as e:
                with lock:
                    failures.append(f"reset: {e!r}")
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                continue
            elapsed = time.perf_counter() - start
            if status != 200:
                with lock:
                    failures.append(f"{status}: {data[:80]!r}")
                continue
            out = json.loads(data)["outputs"]
            if not close(_flat_rows(next(iter(out.values()))), valid[i]["want"]):
                with lock:
                    failures.append(f"wrong answer for request {i}")
                continue
            with lock:
                latencies[i] = elapsed

    def attacker(k):
        conn, n = http.client.HTTPConnection("127.0.0.1", port, timeout=30), k
        while not done.is_set() and time.monotonic() < stop_at:
            a = attacks[n % len(attacks)]
            n += 1
            try:
                status, data = send(conn, a["body"])
            except OSError:
                status, data = 0, b""
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            with lock:
                got[str(status)] = got.get(str(status), 0) + 1
                if 400 <= status < 500 and a["words"] not in data.decode(errors="replace"):
                    misnamed.append(data[:80].decode(errors="replace"))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    bad = [threading.Thread(target=attacker, args=(k,)) for k in range(attackers)]
    start = time.perf_counter()
    for t in bad + threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    done.set()
    for t in bad:
        t.join()
    ms = sorted(v * 1000 for v in latencies.values())
    return {
        "clients": clients,
        "attackers": attackers,
        "valid_requests": len(valid),
        "valid_failed": len(valid) - len(latencies),
        "failures": failures[:5],
        "attack_requests": sum(got.values()),
        "attack_statuses": got,
        "attack_errors_not_naming_the_problem": len(misnamed),
        "valid_throughput_rps": len(latencies) / wall,
        "p50_ms": statistics.median(ms) if ms else None,
        "p99_ms": ms[min(len(ms) - 1, int(0.99 * len(ms)))] if ms else None,
    }


def _flat_rows(v) -> list:
    return [_flat(row) if isinstance(row, list) else [row] for row in v]


def client_process(port: int, clients: int, requests: int, seconds: float, data: Path) -> dict:
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--client",
            str(port),
            str(clients),
            str(requests),
            str(seconds),
            str(data),
        ],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise SystemExit(out.stderr or out.stdout)
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1500, help="per setting, at most")
    parser.add_argument("--seconds", type=float, default=20.0, help="per setting, at most")
    parser.add_argument("--spec", default="mlp_digits", help="an example spec's name")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--attack", action="store_true", help="the attack test (see above)")
    parser.add_argument("--client", nargs=5, help=argparse.SUPPRESS)  # the load process
    parser.add_argument("--attack-client", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.attack_client:
        port, clients, attackers, seconds, data = args.attack_client
        doc = json.loads(Path(data).read_text())
        row = attack(int(port), doc["name"], doc, int(clients), int(attackers), float(seconds))
        print(json.dumps(row))
        return
    if args.attack:
        run_attack(args)
        return
    if args.client:
        port, clients, requests, seconds, data = args.client
        doc = json.loads(Path(data).read_text())
        print(
            json.dumps(
                load(
                    int(port),
                    doc.get("name", "mlp_digits"),
                    doc["x"],
                    doc["want"],
                    int(clients),
                    int(requests),
                    float(seconds),
                )
            )
        )
        return

    import numpy as np
    import torch

    import specc.runtime as sr
    from specc.compiler import export as ex
    from specc.compiler.codegen import write
    from specc.compiler.pipeline import compile_file

    compiled = compile_file(next((ROOT / "specs").glob(f"{args.spec}.*")))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / args.spec
        write(compiled, folder)
        torch.manual_seed(0)
        ex.export(ex.instantiate(folder), compiled.ir, folder / "model.onnx")
        shape = compiled.ir.inputs[0].dims[1:]
        xs = np.random.default_rng(0).normal(size=(256, *shape)).astype(np.float32)
        want = sr.load(folder, device="cpu")(xs).reshape(256, -1)
        data = Path(tmp) / "requests.json"
        data.write_text(json.dumps({"name": args.spec, "x": xs.tolist(), "want": want.tolist()}))
        for batching in (False, True):
            proc, port = start_server(folder, batching)
            try:
                for clients in (1, 8, 64):
                    row = client_process(port, clients, args.requests, args.seconds, data)
                    row["batching"] = batching
                    rows.append(row)
                    print(
                        f"{args.spec}: batching {'on ' if batching else 'off'}  clients {clients:>2}: {row['requests']:>5} requests, "
                        f"{row['throughput_rps']:7.0f} req/s, p50 {row['p50_ms']:6.2f} ms, p99 {row['p99_ms']:6.2f} ms",
                        flush=True,
                    )
            finally:
                proc.terminate()
                proc.wait(timeout=30)
    print("\nevery answer matched the model run locally; none lost")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


def run_attack(args) -> None:
    """sentiment_gru served with batching on, attacked and not (see the module docstring)."""
    import numpy as np
    import torch

    import specc.runtime as sr
    from specc.compiler import export as ex
    from specc.compiler.codegen import write
    from specc.compiler.pipeline import compile_file
    from specc.runtime.contracts import Meta

    compiled = compile_file(ROOT / "specs" / "sentiment_gru.yaml")
    vocab = compiled.text.vocab
    size = len(vocab)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "sentiment_gru"
        write(compiled, folder)
        torch.manual_seed(0)
        ids = {Meta.TOKEN_IDS: json.dumps({i.name: i.ids for i in compiled.ir.inputs if i.ids})}
        ex.export(
            ex.instantiate(folder),
            compiled.ir,
            folder / "model.onnx",
            vocab=vocab.to_json(),
            extra=ids,
        )
        local = sr.load(folder, device="cpu")
        rng = np.random.default_rng(0)
        valid = []
        for _ in range(960):
            n, t = int(rng.integers(1, 4)), int(rng.choice([6, 9, 12]))
            words = rng.integers(4, size, size=(n, t))
            lengths = rng.integers(1, t + 1, size=n)
            want = local.run(words=words, lengths=lengths)["logits"]
            body = json.dumps({"inputs": {"words": words.tolist(), "lengths": lengths.tolist()}})
            valid.append({"body": body, "want": want.tolist()})
        w = [[4, 5, 6]]
        attacks = [
            ({"words": [[4, 5, size]], "lengths": [3]}, f"token id {size}"),
            ({"words": [[4, 5, 6], [7, 8, 9]], "lengths": [3, 3, 3]}, "batch size"),
            ({"words": [[4, -5, 6]], "lengths": [3]}, "token id -5"),
            ({"words": w, "lengths": [0]}, "the length 0"),
            ({"words": w, "lengths": [10**6]}, "the length 1000000"),
        ]
        attacks = [{"body": json.dumps({"inputs": a}), "words": m} for a, m in attacks]
        attacks.append(
            {"body": '{"inputs": {"words": [[4, NaN]], "lengths": [2]}}', "words": "NaN"}
        )
        attacks.append(
            {"body": '{"inputs": ' + "[" * 2000 + "]" * 2000 + "}", "words": "nested too deeply"}
        )
        data = Path(tmp) / "attack.json"
        data.write_text(json.dumps({"name": "sentiment_gru", "valid": valid, "attacks": attacks}))
        port = free_port()
        cmd = [SPECC, "serve", str(folder), "--port", str(port), "--device", "cpu", "--quiet"]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_ready(port, proc)
            for attackers in (4, 0):
                out = subprocess.run(
                    [sys.executable, __file__, "--attack-client", str(port), "32", str(attackers)]
                    + [str(args.seconds * 6), str(data)],
                    capture_output=True,
                    text=True,
                )
                if out.returncode != 0:
                    raise SystemExit(out.stderr or out.stdout)
                row = json.loads(out.stdout)
                rows.append(row)
                print(
                    f"sentiment_gru, batching on, 32 clients, {attackers} attackers: "
                    f"{row['valid_failed']} of {row['valid_requests']} valid requests failed; "
                    f"{row['valid_throughput_rps']:.0f} valid req/s, p50 {row['p50_ms']:.2f} ms, "
                    f"p99 {row['p99_ms']:.2f} ms; attackers: {row['attack_requests']} requests, "
                    f"statuses {row['attack_statuses']}, "
                    f"{row['attack_errors_not_naming_the_problem']} not naming the problem",
                    flush=True,
                )
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    if any(r["valid_failed"] for r in rows):
        raise SystemExit(f"valid requests failed: {[r['failures'] for r in rows]}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


def wait_ready(port: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start")


if __name__ == "__main__":
    main()
