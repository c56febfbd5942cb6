"""Recurrent layers through ONNX Runtime: the Scan export against native LSTM/GRU/RNN nodes.

For each model and size, on the same weights: PyTorch eager (torch's fused nn.LSTM/nn.GRU/nn.RNN),
ONNX Runtime running the graph exported with an ONNX `Scan` (specc's export before
compiler/export/recurrent.py, policy "scan"), the graph with native `LSTM`/`GRU`/`RNN` nodes
(policy "native") and, for RNN layers, specc's default (policy "auto": an If on batch * hidden
between the two; for LSTM and GRU "auto" is the native graph). 2 threads each (--threads), blocks
of 10 interleaved calls in shuffled order (bench/run.py's interleaved_ms), medians.

- char_lm: specs/char_lm.yaml with embeddings of 64 (the spec has 32; `--embedding` sets it),
  2-layer LSTM of 128, the docs' character vocabulary; batch 1 x T=64, 64 x 64, 1 x 512.
- sentiment_gru: specs/sentiment_gru.yaml (embedding 16, bidirectional GRU of 32, `lengths`,
  output last); the lengths are drawn in [T/2, T].
- irnn: specs/irnn.yaml (ReLU RNN of 32 over 2 features, output last): short sequences, where
  the Scan was already faster than eager.
- char_lm's step graph (step.onnx: tokens and the state in, logits and the next state out), as
  generation calls it: batch 1 x T=1, batch 64 x T=1, and a prompt of 8 at batch 1.

    python bench/rnn_native.py [--repeat 200] [--threads 2] [--json out.json] [--profile]
    python bench/rnn_native.py --threads 1 --cpu-time     # a shared machine: CPU time per call

--profile also runs each ONNX Runtime session with SessionOptions.enable_profiling and prints
where the time goes, per operator type.
"""

from __future__ import annotations

import argparse
import bisect
import json
import platform
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

from specc.compiler import export as ex
from specc.compiler.codegen import write
from specc.compiler.export import language_model as lm_export
from specc.compiler.export import recurrent as export_recurrent
from specc.compiler.pipeline import compile_file

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from run import interleaved_ms  # noqa: E402

THREADS = 2
CASES = {  # spec: (batch, time) of the full-sequence graph
    "char_lm": [(1, 64), (64, 64), (1, 512)],
    "sentiment_gru": [(1, 16), (64, 16), (1, 64), (64, 64)],
    "irnn": [(1, 8), (64, 8), (1, 30), (64, 30)],
}
STEP_CASES = {"char_lm": [(1, 1), (64, 1), (1, 8)]}  # the step graph (state in and out)


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
        elif inp.dtype == "int64":
            vocab = len(compiled.text.vocab) if compiled.text else 20
            out[inp.name] = rng.integers(4, vocab, (batch, time))
        else:
            out[inp.name] = rng.standard_normal((batch, time, *inp.dims[2:])).astype(np.float32)
    return out


def step_feeds(model, compiled, batch: int, time: int, seed: int) -> list[torch.Tensor]:
    return list(lm_export.step_feeds(model, compiled.ir, batch, time, seed))


def profile(path: Path, feeds: dict, runs: int, folder: Path, warm: int = 5) -> dict[str, float]:
    """Microseconds per call from ONNX Runtime's profiler: the whole run and each operator type,
    medians over `runs` calls (the first `warm` calls, which allocate and pack weights, left out;
    medians, because on a shared machine single kernels are now and then preempted)."""
    s = session(path, str(folder / path.stem))
    for _ in range(warm + runs):
        s.run(None, feeds)
    trace = json.loads(Path(s.end_profiling()).read_text())
    windows = sorted((e["ts"], e["ts"] + e["dur"]) for e in trace if e.get("name") == "model_run")[
        warm:
    ]
    per_run = [defaultdict(float) for _ in windows]
    starts = [w[0] for w in windows]
    for event in trace:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            k = bisect.bisect_right(starts, event["ts"]) - 1
            if k >= 0 and event["ts"] <= windows[k][1]:
                per_run[k][event["args"]["op_name"]] += event["dur"]
    ops = {op for run in per_run for op in run}
    out = {op: statistics.median(run.get(op, 0.0) for run in per_run) for op in ops}
    out = dict(sorted(out.items(), key=lambda kv: -kv[1]))
    total = statistics.median(end - start for start, end in windows)
    return {k: round(v, 1) for k, v in ({"model_run": total} | out).items()}


def cpu_ms(contenders: dict, repeat: int, block: int = 10) -> dict[str, float]:
    """interleaved_ms's schedule, timed by the calling thread's CPU time: with one thread per
    engine all the work runs on it, and time spent waiting for a core (this machine is shared)
    does not count."""
    for fn in contenders.values():
        for _ in range(5):
            fn()
    times = {k: [] for k in contenders}
    names, shuffle = list(contenders), random.Random(0).shuffle
    for _ in range(max(1, repeat // block)):
        shuffle(names)
        for k in names:
            for i in range(block + 2):
                start = time.thread_time()
                contenders[k]()
                if i >= 2:
                    times[k].append((time.thread_time() - start) * 1e3)
    return {k: statistics.median(v) for k, v in times.items()}


def compare(args, label, batch, time, eager, want, sessions, paths, feeds, tmp) -> dict:
    """Time eager against the sessions; check each against eager's outputs (`want`)."""
    diffs = {
        k: max(float(np.max(np.abs(g - w))) for g, w in zip(s.run(None, feeds), want, strict=True))
        for k, s in sessions.items()
    }
    contenders = {"eager": eager} | {
        k: (lambda s=s: s.run(None, feeds)) for k, s in sessions.items()
    }
    ms = (
        cpu_ms(contenders, args.repeat)
        if args.cpu_time
        else interleaved_ms(contenders, args.repeat)
    )
    row = {
        "model": label,
        "batch": batch,
        "time": time,
        "ms": {k: round(v, 4) for k, v in ms.items()},
        "eager_over": {k: round(ms["eager"] / v, 2) for k, v in ms.items() if k != "eager"},
        "max_abs_diff": diffs,
    }
    if args.profile:
        row["profile_us"] = {k: profile(p, feeds, 50, Path(tmp)) for k, p in paths.items()}
    print(json.dumps(row), flush=True)
    return row


def exports(model, compiled, folder: Path, step: bool) -> dict[str, Path]:
    """The graph under each policy: "scan" (before), "native" (the node always) and, where it
    differs (RNN layers: an If between the two), "auto", specc's default."""
    export = lm_export.export_step if step else ex.export
    kinds = {m.mode for m in model.modules() if export_recurrent.supported(m)}
    policies = (
        ("scan", "native", "auto")
        if kinds & set(export_recurrent.RNN_NATIVE_LIMIT)
        else ("scan", "native")
    )
    paths = {}
    for how in policies:
        with export_recurrent.policy(how):
            paths[how] = export(model, compiled.ir, folder / f"{how}{'_step' if step else ''}.onnx")
    return paths


def main() -> None:
    global THREADS
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--embedding", type=int, default=64)
    parser.add_argument("--threads", type=int, default=THREADS)
    parser.add_argument("--only", nargs="*", help="some of: " + " ".join(CASES))
    parser.add_argument("--json", type=Path)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--cpu-time",
        action="store_true",
        help="with --threads 1: the calling thread's CPU time instead of wall time",
    )
    args = parser.parse_args()
    if args.cpu_time and args.threads != 1:
        parser.error("--cpu-time measures the calling thread only: use it with --threads 1")
    THREADS = args.threads
    torch.set_num_threads(THREADS)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for spec, sizes in CASES.items():
            if args.only and spec not in args.only:
                continue
            overrides = [f"model.0.embedding_dim={args.embedding}"] if spec == "char_lm" else []
            compiled = compile_file(ROOT / "specs" / f"{spec}.yaml", overrides)
            folder = Path(tmp) / spec
            write(compiled, folder)
            torch.manual_seed(0)
            model = ex.instantiate(folder)
            paths = exports(model, compiled, folder, step=False)
            sessions = {k: session(p) for k, p in paths.items()}
            print(f"{spec}: " + "; ".join(f"{k} {op_types(p)}" for k, p in paths.items()))
            for batch, time in sizes:
                feeds = feeds_for(compiled, batch, time, seed=batch * 1000 + time)
                tensors = [torch.from_numpy(feeds[i.name]) for i in compiled.ir.inputs]
                with torch.no_grad():
                    want = [model(*tensors).numpy()]

                def eager(tensors=tensors):
                    with torch.no_grad():
                        model(*tensors)

                rows.append(
                    compare(args, spec, batch, time, eager, want, sessions, paths, feeds, tmp)
                )
            if spec not in STEP_CASES:
                continue
            paths = exports(model, compiled, folder, step=True)
            sessions = {k: session(p) for k, p in paths.items()}
            names = [i.name for i in sessions["native"].get_inputs()]
            for batch, time in STEP_CASES[spec]:
                tensors = step_feeds(model, compiled, batch, time, seed=batch + time)
                feeds = {n: t.numpy() for n, t in zip(names, tensors, strict=True)}
                with torch.no_grad():
                    want = [t.numpy() for t in model.step(*tensors)]

                def eager(tensors=tensors):
                    with torch.no_grad():
                        model.step(*tensors)

                label = f"{spec} step"
                rows.append(
                    compare(args, label, batch, time, eager, want, sessions, paths, feeds, tmp)
                )
    print()
    print(
        "| model | batch x T | eager | ORT Scan | ORT native | ORT auto (RNN: If) | eager/Scan | eager/native | eager/auto |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        ms, over = r["ms"], r["eager_over"]
        auto = "auto" if "auto" in ms else "native"  # LSTM/GRU: auto is the native graph
        print(
            f"| {r['model']} | {r['batch']} x {r['time']} | {ms['eager']:.3f} ms | "
            f"{ms['scan']:.3f} ms | {ms['native']:.3f} ms | {ms[auto]:.3f} ms | "
            f"{over['scan']:.2f}x | {over['native']:.2f}x | {over[auto]:.2f}x |"
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
