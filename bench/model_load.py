"""What trusting only model.onnx's own bytes costs: reading and hashing a large model (sha256
keys the optimized-graph cache), and `specc.runtime.load` without the cache, writing it, and
hitting it.

    python bench/model_load.py [--mb 100] [--repeat 5] [--json out.json]

The model is one MatMul with a (n, n) float32 weight of about --mb megabytes and specc's
metadata; the cache folder is a fresh temporary one (SPECC_CACHE_DIR). Medians of --repeat.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import tempfile
import time
from pathlib import Path


def make_model(path: Path, megabytes: float) -> Path:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    n = int((megabytes * 1e6 / 4) ** 0.5)
    w = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "big",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", n])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", n])],
        [numpy_helper.from_array(w, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    for key, value in (
        ("specc.version", "0.1.0"),
        ("specc.format", "1"),
        ("specc.task", "regression"),
    ):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))
    return path


def median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=100.0)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["SPECC_CACHE_DIR"] = str(Path(tmp) / "cache")
        import specc.runtime as sr

        path = make_model(Path(tmp) / "model.onnx", args.mb)
        size = path.stat().st_size
        data = path.read_bytes()
        read = median_time(path.read_bytes, args.repeat)
        digest = median_time(lambda: hashlib.sha256(data).hexdigest(), args.repeat)
        plain = median_time(lambda: sr.load(path, device="cpu", cache=False), args.repeat)
        first = time.perf_counter()
        assert sr.load(path, device="cpu").cache == "written"
        written = time.perf_counter() - first
        hit = median_time(lambda: sr.load(path, device="cpu"), args.repeat)
        assert sr.load(path, device="cpu").cache == "hit"
    row = {
        "model_mb": size / 1e6,
        "read_ms": read * 1000,
        "sha256_ms": digest * 1000,
        "sha256_mb_per_s": size / 1e6 / digest,
        "load_without_cache_ms": plain * 1000,
        "load_writing_cache_ms": written * 1000,
        "load_cache_hit_ms": hit * 1000,
    }
    print(
        f"model {row['model_mb']:.1f} MB: read {row['read_ms']:.0f} ms, sha256 "
        f"{row['sha256_ms']:.0f} ms ({row['sha256_mb_per_s']:.0f} MB/s); load without the "
        f"cache {row['load_without_cache_ms']:.0f} ms, writing it "
        f"{row['load_writing_cache_ms']:.0f} ms, from it {row['load_cache_hit_ms']:.0f} ms"
    )
    if args.json:
        args.json.write_text(json.dumps(row, indent=2) + "\n")


if __name__ == "__main__":
    main()
