"""A transformer encoder through ONNX Runtime against PyTorch eager, in one run.

Two post-norm encoder layers (model size 64, 4 heads, feed-forward 256) over T=32 steps with a
key-padding lengths input, fresh seeded weights, batch 1 and 64. ONNX Runtime runs at each
graph optimization level, to see which fusions matter; eager runs the same generated
model.py. Timings are interleaved in blocks and reported as medians.

    python bench/attention.py [--repeat 200] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import yaml

import specc.runtime as sr
from specc.compiler import export as ex
from specc.compiler.codegen import write
from specc.compiler.pipeline import compile_file

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from run import interleaved_ms  # noqa: E402

SPEC = {
    "specc": 1,
    "name": "encoder_bench",
    "task": "regression",
    "inputs": {"x": {"shape": ["time", 64]}, "n": {"shape": [], "dtype": "int64"}},
    "model": [
        {"type": "positional_encoding"},
        {
            "type": "transformer_encoder_layer",
            "num_heads": 4,
            "feedforward": 256,
            "lengths": "n",
            "repeat": 2,
        },
    ],
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "spec.yaml").write_text(yaml.safe_dump(SPEC, sort_keys=False))
        compiled = compile_file(folder / "spec.yaml")
        write(compiled, folder)
        torch.manual_seed(0)
        model = ex.instantiate(folder)
        path = ex.export(model, compiled.ir, folder / "model.onnx")
        sessions = {
            level: sr.Model(path, device="cpu", optimization=level, cache=False)
            for level in ("basic", "extended", "all")
        }
        for batch in (1, 64):
            x = torch.randn(batch, 32, 64)
            n = torch.full((batch,), 32)
            n[::2] = 20  # half the batch padded
            feeds = {"x": x.numpy(), "n": n.numpy()}

            def eager(x=x, n=n):
                with torch.no_grad():
                    model(x, n)

            contenders = {"eager": eager}
            for level, session in sessions.items():
                contenders[f"ort_{level}"] = lambda s=session: s.run(**feeds)
            ms = interleaved_ms(contenders, args.repeat)
            with torch.no_grad():
                want = model(x, n).numpy()
            diff = float(np.max(np.abs(sessions["all"].run(**feeds)["prediction"] - want)))
            rows[f"b{batch}_t32"] = ms | {
                "eager_over_ort_all": ms["eager"] / ms["ort_all"],
                "max_abs_diff": diff,
            }
    result = {
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads",
        "torch": torch.__version__,
        "onnxruntime": __import__("onnxruntime").__version__,
        "rows": rows,
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
