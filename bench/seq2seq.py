"""Seq2seq decoding speed: ONNX Runtime against PyTorch eager, in one run.

Both example seq2seq specs are trained first (specs/seq2seq_reverse.yaml: GRU + attention;
specs/transformer_copy_sort.yaml: transformer with a key/value cache), so decodes stop at
<eos> where a trained model stops. Then, at batch 1 and 32:

1. one decoder step (one token, state in and out): step.onnx against model.step;
2. the encoder: encoder.onnx against model.encode (batch 1 and 64);
3. whole decodes in sequences per second, greedy and beam search (4 beams): specc.runtime's
   Seq2Seq against the same search code driving model.encode/model.step in eager PyTorch
   (a subclass that swaps the engine), so only the engine differs.

Timings are interleaved in blocks and reported as medians; ratios are taken within the run.

    python bench/seq2seq.py [--repeat 100] [--json out.json] [--runs DIR]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

import specc.runtime as sr
from specc.compiler import export as ex
from specc.compiler.datasets.pairs import generate_pairs

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from run import interleaved_ms  # noqa: E402

SPECS = {"gru_attention": "seq2seq_reverse", "transformer": "transformer_copy_sort"}


class EagerSeq2Seq(sr.Seq2Seq):
    """The runtime's search (greedy, beam) with PyTorch eager as the engine."""

    def __init__(self, folder: Path, model: torch.nn.Module):
        super().__init__(folder)
        self.model = model

    def _start(self, source, lengths):
        with torch.no_grad():
            args = [torch.from_numpy(source)] + (
                [torch.from_numpy(lengths)] if lengths is not None else []
            )
            out = [t.numpy() for t in self.model.encode(*args)]
        n = len(self._memories)
        extra = [lengths] if self.info["step_inputs"] else []
        return out[:n], out[n:], extra

    def step(self, tokens, memories, extra, states):
        with torch.no_grad():
            args = [
                torch.from_numpy(np.ascontiguousarray(a))
                for a in (tokens, *memories, *extra, *states)
            ]
            logits, *states = self.model.step(*args)
        return logits.numpy(), [s.numpy() for s in states]


def train(name: str, runs: Path) -> Path:
    out = runs / name
    if not (out / "step.onnx").is_file():
        cmd = [
            str(Path(sys.executable).with_name("specc")),
            "train",
            str(ROOT / "specs" / f"{name}.yaml"),
            "-o",
            str(out),
            "--quiet",
            "--overwrite",
        ]
        subprocess.run(cmd, check=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=100)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--runs", type=Path, help="Reuse (or keep) trained runs here.")
    args = parser.parse_args()
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        runs = args.runs or Path(tmp)
        for label, name in SPECS.items():
            folder = train(name, runs)
            report = json.loads((folder / "report.json").read_text())
            model = ex.instantiate(folder, folder / report["weights"])
            ort_s2s, eager_s2s = sr.Seq2Seq(folder), EagerSeq2Seq(folder, model)
            gen = "reverse" if name == "seq2seq_reverse" else "sort"
            sources, _ = generate_pairs(gen, 64, 12345, (5, 10) if gen == "sort" else (5, 12))
            ids, lengths = ort_s2s.encode_texts(sources)
            for batch in (1, 32):
                src, lens = ids[:batch], lengths[:batch]
                memories, states, extra = ort_s2s._start(src, lens)
                tokens = np.full((batch, 1), 5, dtype=np.int64)
                for _ in range(5):  # a state in the middle of a sequence
                    _, states = ort_s2s.step(tokens, memories, extra, states)
                torch_args = [
                    torch.from_numpy(np.ascontiguousarray(a))
                    for a in (tokens, *memories, *extra, *states)
                ]

                def eager_step(a=torch_args):
                    with torch.no_grad():
                        model.step(*a)

                step_ms = interleaved_ms(
                    {
                        "eager": eager_step,
                        "ort": lambda t=tokens, m=memories, e=extra, s=states: ort_s2s.step(
                            t, m, e, s
                        ),
                    },
                    args.repeat,
                )
                written = sum(len(s) + 1 for s in ort_s2s.decode(src, lens))  # tokens incl. <eos>
                decodes = {
                    "greedy_eager": lambda: eager_s2s.decode(src, lens),
                    "greedy_ort": lambda: ort_s2s.decode(src, lens),
                    "beam4_eager": lambda: eager_s2s.decode(src, lens, method="beam", beam_size=4),
                    "beam4_ort": lambda: ort_s2s.decode(src, lens, method="beam", beam_size=4),
                }
                assert decodes["greedy_eager"]() == decodes["greedy_ort"]()
                assert decodes["beam4_eager"]() == decodes["beam4_ort"]()
                ms = interleaved_ms(decodes, max(5, args.repeat // 10))
                rows[f"{label}_b{batch}"] = {
                    "step_ms": step_ms,
                    "step_eager_over_ort": step_ms["eager"] / step_ms["ort"],
                    "tokens_per_sequence": written / batch,
                    "decode_ms": ms,
                    "sequences_per_s": {k: batch * 1000.0 / v for k, v in ms.items()},
                    "greedy_eager_over_ort": ms["greedy_eager"] / ms["greedy_ort"],
                    "beam4_eager_over_ort": ms["beam4_eager"] / ms["beam4_ort"],
                }
            for batch in (1, 64):
                many_ids, many_lengths = ort_s2s.encode_texts((sources * 2)[:batch])
                t_ids, t_lengths = torch.from_numpy(many_ids), torch.from_numpy(many_lengths)

                def eager_encode(i=t_ids, n=t_lengths):
                    with torch.no_grad():
                        model.encode(i, n)

                enc = ort_s2s.encoder
                ms = interleaved_ms(
                    {
                        "eager": eager_encode,
                        "ort": lambda i=many_ids, n=many_lengths: enc.run(
                            source=i, source_lengths=n
                        ),
                    },
                    args.repeat,
                )
                rows[f"{label}_encoder_b{batch}"] = ms | {"eager_over_ort": ms["eager"] / ms["ort"]}
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
