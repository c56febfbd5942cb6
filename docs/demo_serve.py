"""The end of `make demo`: serve the trained model through specc.runtime (ONNX Runtime, no torch).

Usage: python docs/demo_serve.py RUN_DIR   (a folder written by `specc train`)
"""

import json
import sys
from pathlib import Path

import numpy as np

import specc.runtime as sr

run = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/lenet5")
model = sr.load(run, device="auto")
print(model)

data = np.load(run / "data.npz")
val = np.load(run / "splits.npz")["val"]
x_val, y_val = data["x"][val], data["y"][val]

pred = model.predict(x_val)
accuracy = float(np.mean(pred.classes == y_val))
report = json.loads((run / "report.json").read_text())

print(f"\nfirst predictions on held-out digits (device: {model.device}):")
for i in range(8):
    print(
        f"  example {val[i]:4d}: true {y_val[i]}  predicted {pred.labels[i]}  p={pred.probabilities[i, pred.classes[i]]:.3f}"
    )
print(f"\nONNX Runtime validation accuracy: {accuracy:.4f} on {len(y_val)} held-out examples")
print(f"PyTorch validation accuracy:      {report['metrics']['val_accuracy']:.4f}")
print(
    f"max |ONNX Runtime - PyTorch| on logits: {report['parity']['max_abs_diff']:.2e} (tolerance {report['parity']['tolerance']:g})"
)
