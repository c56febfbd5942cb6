"""The int8 accuracy guard refuses a model that quantization breaks, and keeps it only when told."""

from __future__ import annotations

import json

import numpy as np
import torch
from helpers import run_specc

from specc.compiler import codegen
from specc.compiler import export as ex
from specc.compiler.pipeline import compile_file

SPEC = """\
specc: 1
name: fragile
task: classification
inputs: {x: {shape: [9]}}
model:
  - {type: linear, out_features: 4}
"""


def test_a_model_that_int8_breaks_is_refused(tmp_path):
    """Weights of size ~0.01 share a layer with one weight of 100 on an input that is always 0:
    per-tensor int8 rounds every small weight to zero, so the classes collapse."""
    (tmp_path / "s.yaml").write_text(SPEC)
    compiled = compile_file(tmp_path / "s.yaml")
    run = tmp_path / "run"
    codegen.write(compiled, run)
    rng = np.random.default_rng(0)
    w = rng.normal(scale=0.01, size=(4, 8)).astype(np.float32)
    x = np.concatenate([rng.normal(size=(400, 8)), np.zeros((400, 1))], axis=1).astype(np.float32)
    y = (x[:, :8] @ w.T).argmax(axis=1)
    model = ex.instantiate(run)
    with torch.no_grad():
        model.linear_1.weight.copy_(
            torch.from_numpy(np.concatenate([w, np.full((4, 1), 100.0, np.float32)], axis=1))
        )
        model.linear_1.bias.zero_()
    ex.export(model, compiled.ir, run / "model.onnx")
    np.savez(run / "data.npz", x=x, y=y)
    np.savez(run / "splits.npz", train=np.arange(300), val=np.arange(300, 400), test=np.arange(0))

    proc = run_specc("export", run, "--quantize", "int8")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "int8 model refused: validation accuracy 1.0000 ->" in proc.stderr
    assert not (run / "model.int8.onnx").exists() and not (run / "quantization.json").exists()

    proc = run_specc("export", run, "--quantize", "int8", "--allow-drop")
    assert proc.returncode == 0 and "warning: keeping the int8 model although" in proc.stdout
    figures = json.loads((run / "quantization.json").read_text())
    assert not figures["accepted"] and figures["accuracy_drop_points"] > 20
    proc = run_specc("export", run, "--quantize", "int4")
    assert proc.returncode == 1 and "unknown --quantize 'int4'" in proc.stderr
