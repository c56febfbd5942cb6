"""The one-to-many decoder: its parameter count, teacher forcing against a hand-written loop,
located errors, and a model that learns to spell a digit's name and runs in ONNX Runtime."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from helpers import errors_of, run_specc

import specc.runtime as sr
from specc.compiler import codegen
from specc.compiler import export as ex
from specc.compiler.pipeline import compile_file

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
CHARS = "abcdefghijklmnopqrstuvwxyz."  # "." ends a word; later positions are padding (-100)


def spec_text(cell="gru", teacher=0.5, data="") -> str:
    return yaml.safe_dump(
        {
            "specc": 1,
            "name": "spell",
            "task": "classification",
            "inputs": {"digit": {"shape": [10]}},
            "model": [
                {"type": "linear", "out_features": 32},
                {"type": "tanh"},
                {
                    "type": "decoder",
                    "cell": cell,
                    "hidden_size": 32,
                    "steps": 6,
                    "out_features": len(CHARS),
                    "teacher_forcing": teacher,
                },
            ],
            **({"data": {"type": "npz", "path": data, "val_split": 0.2}} if data else {}),
            "train": {"epochs": 25, "batch_size": 16, "optimizer": {"type": "adam", "lr": 0.01}},
        },
        sort_keys=False,
    )


def build(tmp_path, **kw):
    path = tmp_path / "spell.yaml"
    path.write_text(spec_text(**kw))
    compiled = compile_file(path)
    codegen.write(compiled, tmp_path / "gen")
    torch.manual_seed(0)
    return compiled, ex.instantiate(tmp_path / "gen")


def hand_loop(dec, v, feed):
    """The decoder by hand: bridge, cell, head; `feed(t, out)` says what step t+1 reads."""
    state = torch.tanh(dec.bridge(v))
    lstm = isinstance(dec.cell, torch.nn.LSTMCell)
    if lstm:
        state = tuple(state.chunk(2, dim=-1))
    step_in, outs = dec.start.expand(len(v), -1), []
    for t in range(dec.steps):
        state = dec.cell(step_in, state)
        out = dec.head(state[0] if lstm else state)
        outs.append(out)
        step_in = dec.embed(feed(t, out))
    return torch.stack(outs, dim=1)


@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn"])
def test_teacher_forcing_reads_targets_and_free_running_reads_itself(tmp_path, cell):
    compiled, model = build(tmp_path, cell=cell, teacher=1.0)
    assert sum(p.numel() for p in model.parameters()) == compiled.inferred.total_params
    x = torch.randn(4, 10)
    y = torch.randint(0, len(CHARS), (4, 6))
    y[0, 4:] = -100
    dec = model.decoder_1
    v = torch.tanh(model.linear_1(x))
    with torch.no_grad():
        model.train()
        forced = model(x, targets=y)
        want = hand_loop(dec, v, lambda t, out: y[:, t].clamp_min(0))
        torch.testing.assert_close(forced, want)
        model.eval()  # evaluation never peeks at targets
        free = hand_loop(dec, v, lambda t, out: out.argmax(-1))
        torch.testing.assert_close(model(x, targets=y), free)
        torch.testing.assert_close(model(x), free)
        assert not torch.allclose(forced, free)


def test_decoder_mistakes_are_located(write_spec):
    base = (
        "specc: 1\nname: d\ntask: classification\ninputs: {{x: {{shape: {shape}}}}}\n"
        "model:\n  - {{type: decoder, hidden_size: 8, steps: 3, out_features: 5{extra}}}\n"
    )
    (e,) = errors_of(
        run_specc("check", write_spec(base.format(shape="[4]", extra=", bidirectional: true")))
    )
    assert e["line"] == "6" and "cannot also run right to left" in e["msg"], e
    (e,) = errors_of(run_specc("check", write_spec(base.format(shape="[time, 4]", extra=""))))
    assert "decoder unrolls from a vector (batch, features), got (batch, time, 4)" in e["msg"], e


def test_a_decoder_learns_to_spell_and_runs_in_onnx_runtime(tmp_path):
    rng = np.random.default_rng(0)
    digits = rng.integers(0, 10, 400)
    x = np.eye(10, dtype=np.float32)[digits] + 0.1 * rng.standard_normal((400, 10)).astype(
        np.float32
    )
    y = np.full((400, 6), -100, dtype=np.int64)
    for i, d in enumerate(digits):
        word = WORDS[d] + "."
        y[i, : len(word)] = [CHARS.index(c) for c in word]
    np.savez(tmp_path / "spell.npz", x=x, y=y)
    path = tmp_path / "spell.yaml"
    path.write_text(spec_text(data="spell.npz"))
    out = tmp_path / "run"
    proc = run_specc("train", path, "-o", out, "--quiet")
    assert proc.returncode == 0, proc.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["metrics"]["val_accuracy"] >= 0.99  # per character, padding excluded
    model = sr.load(out)
    logits = model(np.eye(10, dtype=np.float32))
    spelled = ["".join(CHARS[i] for i in row).split(".")[0] for row in logits.argmax(-1)]
    assert spelled == WORDS
