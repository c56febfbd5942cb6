"""Inference latency of every example spec: ONNX Runtime (CPU) vs PyTorch eager, side by side in one run.

Run: make bench   (or .venv/bin/python bench/run.py [--repeat N]). Prints a Markdown table.
Ratios are taken within one run on one machine; absolute times depend on it.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import onnxruntime as ort
import torch
from specc.compiler.codegen import write
from specc.compiler.pipeline import compile_file
from specc.runtime import export as ex

ROOT = Path(__file__).resolve().parent.parent


def median_ms(fn, repeat: int) -> float:
    for _ in range(5):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    threads = torch.get_num_threads()
    print(
        f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__} ({threads} threads), onnxruntime {ort.__version__}\n"
    )
    print("| spec | batch | PyTorch eager (ms) | ONNX Runtime (ms) | eager / ORT |")
    print("|---|---:|---:|---:|---:|")
    for spec in sorted((ROOT / "specs").glob("*.*")):
        compiled = compile_file(spec)
        with tempfile.TemporaryDirectory() as tmp:
            write(compiled, Path(tmp))
            model = ex.instantiate(Path(tmp))
            path = ex.export(model, compiled.ir, Path(tmp) / "m.onnx")
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = threads
            session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
            for batch in (1, 64):
                feeds = ex.example_feeds(compiled.ir, batch, 8, seed=0)
                np_feeds = {k: v.numpy() for k, v in feeds.items()}
                args_ = list(feeds.values())

                def eager():
                    with torch.inference_mode():
                        model(*args_)

                t_eager = median_ms(eager, args.repeat)
                t_ort = median_ms(lambda: session.run(None, np_feeds), args.repeat)
                print(
                    f"| {spec.stem} | {batch} | {t_eager:.3f} | {t_ort:.3f} | {t_eager / t_ort:.2f}x |"
                )


if __name__ == "__main__":
    main()
