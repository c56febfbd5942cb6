"""Recurrent layers through ONNX Runtime: the Scan export against native LSTM/GRU/RNN nodes.

For each model and size, three contenders on the same weights: PyTorch eager (torch's fused
nn.LSTM/nn.GRU), ONNX Runtime running the graph exported with an ONNX `Scan` (specc's export
before compiler/export_recurrent.py), and ONNX Runtime running the graph with native
`LSTM`/`GRU` nodes. 2 threads each, blocks of 10 interleaved calls in shuffled order (bench/run.py's
interleaved_ms), medians.

- char_lm: specs/char_lm.yaml with embeddings of 64 (the spec has 32; `--embedding` sets it),
  2-layer LSTM of 128, the docs' character vocabulary; batch 1 x T=64, 64 x 64, 1 x 512.
- sentiment_gru: specs/sentiment_gru.yaml (embedding 16, bidirectional GRU of 32, `lengths`,
  output last); the lengths are drawn in [T/2, T].

    python bench/rnn_native.py [--repeat 200] [--json out.json] [--profile]

--profile also runs each ONNX Runtime session with SessionOptions.enable_profiling and prints
where the time goes, per operator type.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from specc.compiler import export_recurrent
from specc.compiler.codegen import write
from specc.compiler.pipeline import compile_file
from specc.runtime import export as ex

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from run import interleaved_ms  # noqa: E402

THREADS = 2
CASES = {
    "char_lm": [(1, 64), (64, 64), (1, 512)],
    "sentiment_gru": [(1, 16), (64, 16), (1, 64), (64, 64)],
}


def session(path: Path, profile_prefix: str | None = None) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = THREADS
    options.inter_op_num_threads = 1
    if profile_prefix:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def op_types(path: Path) -> list[str]:
    return sorted({n.op_type for n in onnx.load(str(path)).graph.node})


def feeds_for(compiled, batch: int, time: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for inp in compiled.ir.inputs:
        if inp.dtype == "int64" and len(inp.dims) == 1:  # lengths in [T/2, T]
            out[inp.name] = rng.integers(max(1, time // 2), time + 1, batch)
        else:
            vocab = len(compiled.text.vocab) if compiled.text else 20
            out[inp.name] = rng.integers(4, vocab, (batch, time))
    return out


def profile(path: Path, feeds: dict, runs: int, folder: Path) -> dict[str, float]:
    """Microseconds per call, per operator type, from ONNX Runtime's profiler."""
    s = session(path, str(folder / path.stem))
    for _ in range(runs):
        s.run(None, feeds)
    trace = json.loads(Path(s.end_profiling()).read_text())
    per_op: dict[str, float] = defaultdict(float)
    for event in trace:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            per_op[event["args"]["op_name"]] += event["dur"]
    return {k: round(v / runs, 1) for k, v in sorted(per_op.items(), key=lambda kv: -kv[1])}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--embedding", type=int, default=64)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(THREADS)
    rows = []
    overrides = {"char_lm": [f"model.0.embedding_dim={args.embedding}"], "sentiment_gru": []}
    with tempfile.TemporaryDirectory() as tmp:
        for spec, sizes in CASES.items():
            compiled = compile_file(ROOT / "specs" / f"{spec}.yaml", overrides[spec])
            folder = Path(tmp) / spec
            write(compiled, folder)
            torch.manual_seed(0)
            model = ex.instantiate(folder)
            with export_recurrent.scan_only():
                scan_path = ex.export(model, compiled.ir, folder / "scan.onnx")
            native_path = ex.export(model, compiled.ir, folder / "native.onnx")
            sessions = {"scan": session(scan_path), "native": session(native_path)}
            print(f"{spec}: scan graph {op_types(scan_path)}; native {op_types(native_path)}")
            for batch, time in sizes:
                feeds = feeds_for(compiled, batch, time, seed=batch * 1000 + time)
                tensors = [torch.from_numpy(feeds[i.name]) for i in compiled.ir.inputs]
                with torch.no_grad():
                    want = model(*tensors).numpy()
                diffs = {
                    k: float(np.max(np.abs(s.run(None, feeds)[0] - want)))
                    for k, s in sessions.items()
                }

                def eager(tensors=tensors):
                    with torch.no_grad():
                        model(*tensors)

                contenders = {"eager": eager} | {
                    f"ort_{k}": (lambda s=s, f=feeds: s.run(None, f)) for k, s in sessions.items()
                }
                ms = interleaved_ms(contenders, args.repeat)
                row = {
                    "model": spec,
                    "batch": batch,
                    "time": time,
                    **{f"{k}_ms": round(v, 4) for k, v in ms.items()},
                    "scan_speedup": round(ms["eager"] / ms["ort_scan"], 2),
                    "native_speedup": round(ms["eager"] / ms["ort_native"], 2),
                    "max_abs_diff": diffs,
                }
                if args.profile:
                    row["profile_us"] = {
                        k: profile(p, feeds, 50, Path(tmp))
                        for k, p in (("scan", scan_path), ("native", native_path))
                    }
                rows.append(row)
                print(json.dumps(row), flush=True)
    print()
    print(
        "| model | batch x T | eager (ms) | ORT Scan (ms) | ORT native (ms) | eager/Scan | eager/native |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['model']} | {r['batch']} x {r['time']} | {r['eager_ms']:.3f} | "
            f"{r['ort_scan_ms']:.3f} | {r['ort_native_ms']:.3f} | {r['scan_speedup']:.2f}x | "
            f"{r['native_speedup']:.2f}x |"
        )
    result = {
        "machine": f"{platform.machine()}, {THREADS} threads",
        "torch": torch.__version__,
        "onnxruntime": ort.__version__,
        "rows": rows,
    }
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
