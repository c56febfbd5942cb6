"""Language-model speed: specs/char_lm.yaml through ONNX Runtime against PyTorch eager, in one run.

1. The full-sequence graph (model.onnx) at T=64, batch 1 and 64.
2. One generated token through the step graph (step.onnx): batch 1, T=1, state in and out.
3. Tokens per second of `specc.runtime.LanguageModel.generate` against a hand-written PyTorch
   sampling loop over the same weights (model.step, softmax, torch.multinomial).

Weights are the fresh seeded initialisation: speed does not depend on what the model learned.
Timings are interleaved in blocks and reported as medians; ratios are taken within the run.

    python bench/lm.py [--repeat 200] [--tokens 200] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import specc.runtime as sr
from specc.compiler import export as ex
from specc.compiler.codegen import write
from specc.compiler.export import language_model as lm_export
from specc.compiler.pipeline import compile_file

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from run import interleaved_ms  # noqa: E402


def torch_generate(model, ids: list[int], tokens: int, temperature: float, seed: int) -> list[int]:
    """The loop a user would write by hand: one model.step per token, state carried."""
    g = torch.Generator().manual_seed(seed)
    out = []
    with torch.no_grad():
        logits, *state = model.step(torch.tensor([ids]), *model.initial_state(1))
        for _ in range(tokens):
            probs = torch.softmax(logits[0, -1, 3:] / temperature, dim=-1)  # never pad/unk/bos
            token = int(torch.multinomial(probs, 1, generator=g)) + 3
            out.append(token)
            logits, *state = model.step(torch.tensor([[token]]), *state)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    compiled = compile_file(ROOT / "specs" / "char_lm.yaml")
    vocab = compiled.text.vocab
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write(compiled, folder)
        torch.manual_seed(0)
        model = ex.instantiate(folder)
        full = sr.load(ex.export(model, compiled.ir, folder / "model.onnx", vocab=vocab.to_json()))
        lm_export.export_step(model, compiled.ir, folder / "step.onnx", vocab=vocab.to_json())
        lm = sr.LanguageModel(folder)
        for batch in (1, 64):
            tokens = torch.randint(4, len(vocab), (batch, 64))
            x = tokens.numpy()

            def eager(tokens=tokens):
                with torch.no_grad():
                    model(tokens)

            ms = interleaved_ms({"eager": eager, "onnxruntime": lambda x=x: full(x)}, args.repeat)
            rows[f"full_sequence_b{batch}_t64"] = ms | {"speedup": ms["eager"] / ms["onnxruntime"]}
        token = np.array([[5]])
        state = lm.initial_state(1)
        t_token = torch.tensor([[5]])
        t_state = model.initial_state(1)

        def eager_step():
            with torch.no_grad():
                model.step(t_token, *t_state)

        ms = interleaved_ms(
            {"eager": eager_step, "onnxruntime": lambda: lm.step(token, state)}, args.repeat
        )
        rows["step_b1_t1"] = ms | {"speedup": ms["eager"] / ms["onnxruntime"]}
        prompt = "The "
        ids = [2, *lm.encode(prompt)]
        per_run = {"generate": [], "torch_loop": []}
        for i in range(7):
            for name in ("generate", "torch_loop") if i % 2 else ("torch_loop", "generate"):
                start = time.perf_counter()
                if name == "generate":
                    lm.generate(prompt, args.tokens, temperature=1.0, seed=i, stop_at_eos=False)
                else:
                    torch_generate(model, ids, args.tokens, 1.0, seed=i)
                per_run[name].append(args.tokens / (time.perf_counter() - start))
        tps = {k: statistics.median(v[1:]) for k, v in per_run.items()}  # the first run warms up
        rows["generate_tokens_per_s"] = tps | {"ratio": tps["generate"] / tps["torch_loop"]}
    result = {
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads",
        "torch": torch.__version__,
        "onnxruntime": __import__("onnxruntime").__version__,
        "spec": "char_lm",
        "vocab": len(vocab),
        "rows": rows,
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
