"""Load test of `specc serve` on loopback: throughput and p50/p99 latency at 1, 8 and 64
concurrent clients, with and without micro-batching. Bounded in count and time; every answer is
checked against the model run locally, and a lost or wrong answer fails the run.

    python bench/serve_load.py [--requests 1500] [--seconds 20] [--json out.json]

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
    parser.add_argument("--client", nargs=5, help=argparse.SUPPRESS)  # the load process
    args = parser.parse_args()
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


if __name__ == "__main__":
    main()
