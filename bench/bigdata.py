"""Data larger than memory: peak RSS and examples/s of `specc train` as an image folder grows.

Generates a pool of RGB PNGs (64x64, two classes: stripes of two orientations under noise),
and for each size a folder of that many files, symlinks to the pool's images in turn (each file
is decoded on its own, as a folder of distinct photos would be);
then runs `specc train` on each (one epoch, one thread) in a fresh process and reads:
  - peak RSS: the largest resident set of any process of the run (specc, its data stage and
    export, and train.py), from getrusage(RUSAGE_CHILDREN) of a wrapper process;
  - examples/s: results.json's train_samples_per_s (train.py's own count over the epoch);
  - the data stage's and the whole run's seconds.
Sizes are the decoded size (float32, 3x64x64 = 48 KiB an example), i.e. what the old data.npz
held in memory whole.

    python bench/bigdata.py [--sizes 0.5 1 2 4] [--root /tmp/specc-bigdata] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
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
train: {{epochs: 1, batch_size: 256, optimizer: {{type: adam, lr: 0.001}}}}
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


def measure(root: Path, gb: float, specc: str) -> dict:
    count = int(gb * 1e9 / PER_EXAMPLE)
    folder = root / f"images_{gb:g}gb"
    subset(root / "images", folder, count)
    spec = root / f"bigdata_{gb:g}gb.yaml"
    spec.write_text(SPEC.format(side=SIDE, path=folder.name))
    run = root / f"run_{gb:g}gb"
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    out = subprocess.run(
        [sys.executable, "-c", WRAPPER, specc, "train", str(spec), "-o", str(run), "--overwrite"],
        capture_output=True,
        text=True,
        env=env,
    )
    m = json.loads(out.stdout)
    if m["rc"] != 0:
        raise SystemExit(f"specc train failed on {gb} GB:\n{m['stderr']}")
    results = json.loads((run / "results.json").read_text())
    data_bytes = (run / "data.npz").stat().st_size
    for path in (run / "data.npz", *(run / "checkpoints").glob("*.pt")):
        path.unlink()  # keep the disk for the next size
    return {
        "decoded_gb": gb,
        "examples": count,
        "data_npz_gb": data_bytes / 1e9,
        "peak_rss_mb": m["peak_rss"] / 1e6,
        "examples_per_s": results["train_samples_per_s"],
        "run_seconds": m["seconds"],
        "val_accuracy": results["metrics"].get("val_accuracy"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[0.5, 1, 2, 4])
    parser.add_argument("--root", type=Path, default=Path("/tmp/specc-bigdata"))
    parser.add_argument("--specc", default=str(Path(sys.executable).with_name("specc")))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    args.root.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    generate(args.root / "images")
    print(f"images: {time.perf_counter() - start:.0f}s", flush=True)
    rows = []
    for gb in args.sizes:
        rows.append(measure(args.root, gb, args.specc))
        print(json.dumps(rows[-1]), flush=True)
    base = rows[0]
    print(
        "\n| decoded | examples | data.npz | peak RSS | vs smallest | examples/s | vs smallest | run |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r['decoded_gb']:g} GB | {r['examples']:,} | {r['data_npz_gb']:.2f} GB | "
            f"{r['peak_rss_mb']:.0f} MB | {r['peak_rss_mb'] / base['peak_rss_mb'] - 1:+.1%} | "
            f"{r['examples_per_s']:,.0f} | {r['examples_per_s'] / base['examples_per_s'] - 1:+.1%} | "
            f"{r['run_seconds']:.0f} s |"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
