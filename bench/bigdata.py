"""Data larger than memory: peak RSS and examples/s of `specc train` as an image folder grows.

Generates a pool of RGB PNGs (64x64, two classes: stripes of two orientations under noise),
and for each size a folder of that many files, symlinks to the pool's images in turn (each file
is decoded on its own, as a folder of distinct photos would be);
then runs `specc train` on each (one thread) in a fresh process and reads:
  - peak RSS: the largest resident set of any process of the run (specc, its data stage and
    export, and train.py), from getrusage(RUSAGE_CHILDREN) of a wrapper process;
  - examples/s: train.py's own count per epoch (metrics.jsonl), the median of the epochs after
    the first (the first pays for warm-up); every size trains on about the same number of
    examples (--examples), so a small set runs more, shorter epochs;
  - the same peak RSS for `specc evaluate --data FOLDER` and `specc predict -i FOLDER`, which
    decode the folder a piece at a time.
Sizes run interleaved (0.5, 1, 2, 4, 0.5, 1, ...) --repeats times, so a slow spell of the
machine falls on every size alike; the table gives each size's median.
Sizes are the decoded size (float32, 3x64x64 = 48 KiB an example), i.e. what the old data.npz
held in memory whole.

    python bench/bigdata.py [--sizes 0.5 1 2 4] [--repeats 3] [--root /tmp/specc-bigdata]
                            [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SIDE = 64
PER_EXAMPLE = 3 * SIDE * SIDE * 4  # decoded bytes
SPEC = """\
specc: 1
name: bigdata
task: classification
inputs: {{image: {{shape: [3, {side}, {side}]}}}}
model:
  - {{type: conv2d, out_channels: 8, kernel_size: 4, stride: 4}}
  - relu
  - flatten
  - {{type: linear, out_features: 2}}
data: {{type: images, path: {path}, color: rgb, val_split: 0.05}}
train: {{epochs: {epochs}, batch_size: 256, optimizer: {{type: adam, lr: 0.001}}}}
"""
WRAPPER = """\
import json, resource, subprocess, sys, time
start = time.perf_counter()
proc = subprocess.run(sys.argv[1:], capture_output=True, text=True)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
print(json.dumps({"rc": proc.returncode, "peak_rss": peak, "seconds": time.perf_counter() - start,
                  "stdout": proc.stdout, "stderr": proc.stderr[-2000:]}))
"""


POOL = 2000


def generate(folder: Path, count: int = POOL) -> None:
    """count PNGs in folder/{h,v}/, made once and kept (the file names say how many exist)."""
    rng = np.random.default_rng(0)
    from PIL import Image

    have = len(list(folder.glob("*/*.png"))) if folder.exists() else 0
    for i in range(have, count):
        cls = "hv"[i % 2]
        img = rng.integers(0, 96, (SIDE, SIDE, 3), dtype=np.uint8)
        at = rng.integers(0, SIDE - 8)
        if cls == "h":
            img[at : at + 8] += 128
        else:
            img[:, at : at + 8] += 128
        (folder / cls).mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(folder / cls / f"{i:07d}.png", compress_level=1)


def subset(source: Path, folder: Path, count: int) -> None:
    """A folder of symlinks to the first `count` images of source."""
    if folder.exists():
        return
    for i in range(count):
        cls = "hv"[i % 2]
        (folder / cls).mkdir(parents=True, exist_ok=True)
        (folder / cls / f"{i:07d}.png").symlink_to(source / cls / f"{i % POOL:07d}.png")


def wrapped(command: list[str]) -> dict:
    """A command's exit code, output, seconds and peak RSS (of it and its children), one thread."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    out = subprocess.run(
        [sys.executable, "-c", WRAPPER, *command], capture_output=True, text=True, env=env
    )
    m = json.loads(out.stdout)
    if m["rc"] != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{m['stderr']}")
    return m


def measure(root: Path, gb: float, specc: str, examples: int) -> dict:
    count = int(gb * 1e9 / PER_EXAMPLE)
    epochs = max(3, round(examples / count))
    folder = root / f"images_{gb:g}gb"
    subset(root / "images", folder, count)
    spec = root / f"bigdata_{gb:g}gb.yaml"
    spec.write_text(SPEC.format(side=SIDE, path=folder.name, epochs=epochs))
    run = root / f"run_{gb:g}gb"
    trained = wrapped([specc, "train", str(spec), "-o", str(run), "--overwrite"])
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    rates = [r["samples_per_s"] for r in rows if r.get("kind") == "epoch"]
    results = json.loads((run / "results.json").read_text())
    data_bytes = (run / "data.npz").stat().st_size
    for path in (run / "data.npz", *(run / "checkpoints").glob("*.pt")):
        path.unlink()  # keep the disk for the next size
    scored = wrapped([specc, "evaluate", str(run), "--data", str(folder), "--json"])
    predicted = wrapped([specc, "predict", str(run), "-i", str(folder)])
    return {
        "decoded_gb": gb,
        "examples": count,
        "epochs": epochs,
        "data_npz_gb": data_bytes / 1e9,
        "peak_rss_mb": trained["peak_rss"] / 1e6,
        "examples_per_s": statistics.median(rates[1:]),
        "epoch_rates": rates,
        "run_seconds": trained["seconds"],
        "val_accuracy": results["metrics"].get("val_accuracy"),
        "evaluate_rss_mb": scored["peak_rss"] / 1e6,
        "evaluate_seconds": scored["seconds"],
        "evaluate_accuracy": json.loads(scored["stdout"])["metrics"]["accuracy"],
        "predict_rss_mb": predicted["peak_rss"] / 1e6,
        "predict_lines": predicted["stdout"].count("\n"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[0.5, 1, 2, 4])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--examples", type=int, default=250_000, help="trained on, each size")
    parser.add_argument("--root", type=Path, default=Path("/tmp/specc-bigdata"))
    parser.add_argument("--specc", default=str(Path(sys.executable).with_name("specc")))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    args.root.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    generate(args.root / "images")
    print(f"images: {time.perf_counter() - start:.0f}s", flush=True)
    passes = []
    for _ in range(args.repeats):
        for gb in args.sizes:
            passes.append(measure(args.root, gb, args.specc, args.examples))
            print(json.dumps(passes[-1]), flush=True)

    def median(gb, key):
        return statistics.median(p[key] for p in passes if p["decoded_gb"] == gb)

    base = args.sizes[0]
    print(
        "\n| decoded | examples | epochs | peak RSS train | vs smallest | examples/s | vs smallest"
        " | peak RSS evaluate | peak RSS predict |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for gb in args.sizes:
        rss, rate = median(gb, "peak_rss_mb"), median(gb, "examples_per_s")
        print(
            f"| {gb:g} GB | {median(gb, 'examples'):,} | {median(gb, 'epochs')} | {rss:.0f} MB | "
            f"{rss / median(base, 'peak_rss_mb') - 1:+.1%} | {rate:,.0f} | "
            f"{rate / median(base, 'examples_per_s') - 1:+.1%} | "
            f"{median(gb, 'evaluate_rss_mb'):.0f} MB | {median(gb, 'predict_rss_mb'):.0f} MB |"
        )
    if args.json:
        args.json.write_text(json.dumps(passes, indent=2) + "\n")


if __name__ == "__main__":
    main()
