"""Inference speed of every example spec, side by side in one run on one machine.

For each spec at batch 1 and 64: PyTorch eager, torch.compile (inductor; compile time excluded),
ONNX Runtime through specc.runtime (CPU, optimized-graph cache on), and the two int8 forms
`specc export --quantize int8` chooses between (static QDQ calibrated on 256 seeded example
inputs, and dynamic). Every row also gives the spec's FLOPs per example (compiler/flops.py, what
`specc check --json` reports), the achieved GFLOP/s and the fraction of the machine's peak for
that engine and number type, measured in the same run (bench/peak.py: a 512 GEMM through
torch, through ONNX Runtime in fp32, and through ONNX Runtime in int8). Then: specc.runtime's
overhead against a bare `onnxruntime.InferenceSession.run` on the same model, the import time of
specc.runtime, and the cold start to a first prediction. Timings are interleaved (blocks of
calls, shuffled order) and reported as medians; ratios are taken within the run.

    python bench/run.py [--repeat 200] [--no-compile] [--threads N [--cpu-time]] [--only SPEC ...]
                        [--no-extras] [--peak-n 512] [--json out.json] [--chart docs/bench_latency.png]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

import specc.runtime as sr
from specc.compiler import export as ex
from specc.compiler.codegen import write
from specc.compiler.pipeline import compile_file
from specc.compiler.quantize import int8_model

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from peak import gflops, peaks, spec_flops  # noqa: E402

# Tasks whose model.onnx runs every layer of the spec once per example (the FLOPs apply); the
# others have graphs of their own and benchmarks of their own (seq2seq.py, lm.py).
WHOLE_GRAPH = ("classification", "regression", "multilabel", "language_model")
# The peak each contender is a fraction of: its engine and number type.
PEAK_OF = {
    "eager": "torch_fp32",
    "torch.compile": "torch_fp32",
    "onnxruntime": "ort_fp32",
    "int8_static": "ort_int8",
    "int8_dynamic": "ort_int8",
}


# What a call's time is: wall clock, or with --cpu-time the calling thread's CPU time (one thread
# per engine: all the work runs on the caller, and waiting for a core on a loaded machine does not
# count).
CLOCK = {"wall": time.perf_counter, "cpu": time.thread_time}
clock = CLOCK["wall"]


def interleaved_ms(contenders: dict, repeat: int, block: int = 10) -> dict[str, float]:
    """Median ms per call of each contender, in alternating blocks of calls.

    Blocks, not single calls: ONNX Runtime's and torch's thread pools spin for a moment after
    a call, which would tax whoever runs next on a 2-core machine. The first two calls of each
    block are dropped for the same reason. The order is shuffled every round (seeded): on this
    machine the block right after a PyTorch block ran up to 1.6x faster (an ONNX Runtime
    session at batch 64: 5.3 ms against 8-9 ms, whichever session it was), which a fixed or
    rotated order (the same cycle) credits to one contender.
    """
    for fn in contenders.values():
        for _ in range(5):
            fn()
    times = {k: [] for k in contenders}
    names, shuffle = list(contenders), random.Random(0).shuffle
    for _ in range(max(1, repeat // block)):
        shuffle(names)
        for k in names:
            fn = contenders[k]
            for i in range(block + 2):
                start = clock()
                fn()
                if i >= 2:
                    times[k].append((clock() - start) * 1e3)
    return {k: statistics.median(v) for k, v in times.items()}


def int8_forms(path: Path, model, folder: Path) -> dict[str, Path]:
    """Both int8 forms of model.onnx; static calibrated on 256 seeded example inputs (fresh
    weights and no data here: the ranges only need to be plausible for timing)."""
    feeds = ex.example_feeds(model, 256, 8, seed=1)
    batches = [{k: v[i : i + 64].numpy() for k, v in feeds.items()} for i in range(0, 256, 64)]
    forms = {}
    for method in ("static", "dynamic"):
        target = folder / f"int8_{method}.onnx"
        try:
            int8_model(path, target, method, batches)
            forms[f"int8_{method}"] = target
        except Exception as e:  # a form the quantizer cannot make for this graph
            print(f"  {path.parent.name}: no {method} int8 form ({type(e).__name__})")
    return forms


def latency(
    repeat: int, with_compile: bool, threads: int | None, peak: dict, only=None
) -> list[dict]:
    rows = []
    for spec in sorted((ROOT / "specs").glob("*.*")):
        if only and spec.stem not in only:
            continue
        compiled = compile_file(spec)
        task = compiled.spec.task
        if task not in WHOLE_GRAPH:
            continue
        flops = spec_flops(compiled, 8)
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            write(compiled, folder)
            torch.manual_seed(0)
            model = ex.instantiate(folder)
            vocab = compiled.text.vocab.to_json() if compiled.text else None
            path = ex.export(model, compiled.ir, folder / "model.onnx", vocab=vocab)
            forms = int8_forms(path, model, folder)
            sessions = {"onnxruntime": sr.load(path, device="cpu", threads=threads)}
            sessions |= {k: sr.load(p, device="cpu", threads=threads) for k, p in forms.items()}
            for batch in (1, 64):
                feeds = ex.example_feeds(model, batch, 8, seed=0)
                args_ = list(feeds.values())
                x = {k: v.numpy() for k, v in feeds.items()}
                contenders = {"eager": lambda: model(*args_)}
                contenders |= {k: (lambda s=s: s.run(**x)) for k, s in sessions.items()}
                compile_s = None
                if with_compile:
                    compiled_model = torch.compile(model, dynamic=False)
                    start = time.perf_counter()
                    with torch.inference_mode():
                        compiled_model(*args_)
                    compile_s = time.perf_counter() - start
                    contenders["torch.compile"] = lambda: compiled_model(*args_)
                with torch.inference_mode():
                    ms = interleaved_ms(contenders, repeat)
                achieved = {k: gflops(flops, batch, v) for k, v in ms.items()}
                row = {
                    "spec": spec.stem,
                    "batch": batch,
                    "ms": ms,
                    "compile_seconds": compile_s,
                    "flops_per_example": flops,
                    "gflops": achieved,
                    "fraction_of_peak": {k: v / peak[PEAK_OF[k]] for k, v in achieved.items()},
                    "eager_over_ort": ms["eager"] / ms["onnxruntime"],
                    "int8_speedup": {
                        k: ms["onnxruntime"] / ms[k] for k in ms if k.startswith("int8")
                    },
                }
                rows.append(row)
                print(
                    f"{spec.stem:<16} batch {batch:>2}: "
                    + "  ".join(f"{k} {v:.3f} ms" for k, v in ms.items())
                    + f"  eager/ORT {row['eager_over_ort']:.2f}x  "
                    + "  ".join(f"{k} {v:.2f}x" for k, v in row["int8_speedup"].items()),
                    flush=True,
                )
    return rows


def runtime_overhead(repeat: int) -> dict:
    """specc.runtime vs a bare InferenceSession on the same model (mlp_digits, batch 1)."""
    compiled = compile_file(ROOT / "specs" / "mlp_digits.toml")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write(compiled, folder)
        path = ex.export(ex.instantiate(folder), compiled.ir, folder / "model.onnx")
        model = sr.load(path, device="cpu", cache=False)
        raw = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        x = np.random.default_rng(0).normal(size=(1, 64)).astype(np.float32)
        name = raw.get_inputs()[0].name
        calls = 2000
        rounds = {
            "raw InferenceSession.run": [],
            "specc.runtime model(x)": [],
            "specc.runtime run(pixels=x)": [],
        }
        fns = {
            "raw InferenceSession.run": lambda: raw.run(None, {name: x}),
            "specc.runtime model(x)": lambda: model(x),
            "specc.runtime run(pixels=x)": lambda: model.run(pixels=x),
        }
        for _ in range(max(5, repeat // 20)):
            for k, fn in fns.items():
                start = time.perf_counter()
                for _ in range(calls):
                    fn()
                rounds[k].append((time.perf_counter() - start) / calls * 1e6)
    us = {k: statistics.median(v) for k, v in rounds.items()}
    base = us["raw InferenceSession.run"]
    return {
        "microseconds": us,
        "overhead_percent": {k: 100 * (v / base - 1) for k, v in us.items()},
    }


def cold_start(runs: int = 5) -> dict:
    """Seconds for a fresh process: import specc.runtime; and import + load + first prediction."""
    compiled = compile_file(ROOT / "specs" / "lenet5.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write(compiled, folder)
        ex.export(ex.instantiate(folder), compiled.ir, folder / "model.onnx")
        np.save(folder / "x.npy", np.zeros((1, 1, 28, 28), np.float32))

        def timed(code: str) -> float:
            out = subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True
            )
            return float(out.stdout.strip().splitlines()[-1])

        clock = "import time; t = time.perf_counter(); "
        baseline = [timed("import time; print(0.0)") for _ in range(2)]
        imports = [
            timed(clock + "import specc.runtime; print(time.perf_counter() - t)")
            for _ in range(runs)
        ]
        no_torch = timed(clock + "import specc.runtime, sys; print(int('torch' in sys.modules))")
        first = clock + (
            f"import numpy as np, specc.runtime as sr; m = sr.load({str(folder)!r}, device='cpu', cache={{cache}}); "
            f"m.predict(np.load({str(folder / 'x.npy')!r})); print(time.perf_counter() - t)"
        )
        cold = [timed(first.format(cache=False)) for _ in range(runs)]
        timed(first.format(cache=True))  # writes the cache
        warm = [timed(first.format(cache=True)) for _ in range(runs)]
    del baseline
    return {
        "import_seconds": statistics.median(imports),
        "imports_torch": bool(no_torch),
        "first_prediction_seconds": statistics.median(cold),
        "first_prediction_with_cache_seconds": statistics.median(warm),
    }


def chart(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    contenders = [
        k
        for k in ("eager", "torch.compile", "onnxruntime", "int8_static", "int8_dynamic")
        if k in rows[0]["ms"]
    ]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for ax, batch in zip(axes, (1, 64), strict=True):
        sel = [r for r in rows if r["batch"] == batch]
        width = 0.8 / len(contenders)
        for i, k in enumerate(contenders):
            speedup = [r["ms"]["eager"] / r["ms"][k] for r in sel]
            ax.bar(np.arange(len(sel)) + i * width, speedup, width, label=k)
        ax.axhline(1.0, color="black", linewidth=0.7)
        ax.set_xticks(
            np.arange(len(sel)) + width * (len(contenders) - 1) / 2,
            [r["spec"] for r in sel],
            fontsize=8,
        )
        ax.set_title(
            f"batch {batch}: speed relative to PyTorch eager (higher is faster)", fontsize=9
        )
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def percent(fraction: float) -> str:
    return f"{100 * fraction:.0f}%" if fraction >= 0.1 else f"{100 * fraction:.1f}%"


def table(rows: list[dict], peak: dict) -> str:
    """The markdown table of docs/benchmarks.md: times, ratios, and achieved throughput as a
    fraction of the engine's peak."""
    names = [k for k in PEAK_OF if k in rows[0]["ms"]]
    head = (
        "| spec | batch | MFLOP/example | "
        + " | ".join(f"{k} (ms)" for k in names)
        + " | eager / ORT | ORT / int8 static | ORT / int8 dynamic | "
        + " | ".join(f"{k} GFLOP/s (% of peak)" for k in names)
        + " |"
    )
    lines = [head, "|---|---:|---:|" + "---:|" * (2 * len(names) + 3)]
    for r in rows:
        speed = r["int8_speedup"]
        lines.append(
            f"| {r['spec']} | {r['batch']} | {r['flops_per_example'] / 1e6:.3g} | "
            + " | ".join(f"{r['ms'][k]:.3f}" if k in r["ms"] else "-" for k in names)
            + f" | {r['eager_over_ort']:.2f}x | "
            + " | ".join(
                f"{speed[k]:.2f}x" if k in speed else "-" for k in ("int8_static", "int8_dynamic")
            )
            + " | "
            + " | ".join(
                f"{r['gflops'][k]:.3g} ({percent(r['fraction_of_peak'][k])})"
                if k in r["ms"]
                else "-"
                for k in names
            )
            + " |"
        )
    lines.append(
        "\npeaks (GEMM {n}x{n}x{n}, best of the run's calls): torch fp32 {torch_fp32:.0f} GFLOP/s, "
        "ONNX Runtime fp32 {ort_fp32:.0f} GFLOP/s, ONNX Runtime int8 {ort_int8:.0f} GOP/s "
        "(MatMulInteger {ort_int8_matmulinteger:.0f}, QLinearMatMul {ort_int8_qlinearmatmul:.0f})".format(
            **peak
        )
    )
    return "\n".join(lines)


def best_peak(*measured: dict) -> dict:
    """The best figure of each engine over the peak measurements of the run."""
    keys = [k for k, v in measured[0].items() if isinstance(v, float)]
    return {k: max(m[k] for m in measured) for k in keys} | {"n": measured[0]["n"]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument(
        "--no-compile", action="store_true", help="skip torch.compile (slow to compile)"
    )
    parser.add_argument(
        "--threads", type=int, help="threads for torch and ONNX Runtime (default: theirs)"
    )
    parser.add_argument(
        "--cpu-time",
        action="store_true",
        help="time calls by the calling thread's CPU time (with --threads 1; for a loaded machine)",
    )
    parser.add_argument("--only", nargs="*", help="spec names (default: every example)")
    parser.add_argument("--peak-n", type=int, default=512, help="size of the peak GEMMs")
    parser.add_argument("--no-extras", action="store_true", help="latency rows only")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--chart", type=Path)
    args = parser.parse_args()
    if args.cpu_time and args.threads != 1:
        parser.error("--cpu-time measures the calling thread only: use it with --threads 1")
    global clock
    clock = CLOCK["cpu" if args.cpu_time else "wall"]
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    machine = (
        f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} ({threads} "
        f"threads), onnxruntime {ort.__version__}, {'CPU' if args.cpu_time else 'wall'} time, "
        f"load average {load} at the start"
    )
    print(f"machine: {machine}\n", flush=True)
    before = peaks(n=args.peak_n, threads=args.threads, clock=clock)
    print(
        "peak before: "
        + ", ".join(f"{k} {v:.0f}" for k, v in before.items() if isinstance(v, float)),
        flush=True,
    )
    rows = latency(args.repeat, not args.no_compile, args.threads, before, args.only)
    after = peaks(n=args.peak_n, threads=args.threads, clock=clock)
    print(
        "peak after: "
        + ", ".join(f"{k} {v:.0f}" for k, v in after.items() if isinstance(v, float)),
        flush=True,
    )
    peak = best_peak(before, after)
    for r in rows:  # against the run's best peak, not the one before the rows
        r["fraction_of_peak"] = {k: v / peak[PEAK_OF[k]] for k, v in r["gflops"].items()}
    overhead = start = None
    if not args.no_extras:
        overhead = runtime_overhead(args.repeat)
        start = cold_start()
    print("\n" + table(rows, peak))
    if overhead:
        print("\nspecc.runtime overhead vs a bare InferenceSession.run (mlp_digits, batch 1):")
        for k, v in overhead["microseconds"].items():
            print(f"  {k:<30} {v:7.2f} us  ({overhead['overhead_percent'][k]:+.1f}%)")
        print(
            f"\nimport specc.runtime: {start['import_seconds'] * 1000:.0f} ms (imports torch: {start['imports_torch']}); "
            f"cold start to first prediction (lenet5): {start['first_prediction_seconds'] * 1000:.0f} ms, "
            f"with the optimized-graph cache: {start['first_prediction_with_cache_seconds'] * 1000:.0f} ms"
        )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "machine": machine,
                    "peak": {"before": before, "after": after, "best": peak},
                    "latency": rows,
                    "runtime_overhead": overhead,
                    "cold_start": start,
                },
                indent=2,
            )
            + "\n"
        )
    if args.chart:
        chart(rows, args.chart)


if __name__ == "__main__":
    main()
