"""task: multilabel, the task added as one module (compiler/tasks/multilabel.py), one template
partial, one runtime class: its loss and metrics against torch and scikit-learn, located
errors, and the example spec trained, exported and served through ONNX Runtime."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import SPECS, errors_of, run_specc
from sklearn.metrics import accuracy_score, f1_score

import specc.runtime as sr
from specc.compiler import codegen
from specc.compiler import export as ex
from specc.compiler.pipeline import compile_file
from specc.compiler.tasks.multilabel import scores

SPEC = SPECS / "multilabel_digits.yaml"


def _random_case(seed: int, n: int = 200, k: int = 3):
    g = np.random.default_rng(seed)
    y = (g.random((n, k)) < [0.5, 0.2, 0.05]).astype(np.float32)
    y[:, 2] = 0 if seed % 2 else y[:, 2]  # a label never present: its F1 is 0 (sklearn's too)
    logits = g.normal(size=(n, k)).astype(np.float32) + 2 * (y - 0.5)
    return logits, y


@pytest.fixture(scope="module")
def train_module(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ml")
    codegen.write(compile_file(SPEC), folder)
    return ex.load_generated(folder, "train.py")


@pytest.mark.parametrize("seed", [0, 1])
def test_train_py_loss_and_metrics_match_torch_and_scikit_learn(train_module, seed):
    logits, y = _random_case(seed)
    out, target = torch.from_numpy(logits), torch.from_numpy(y)
    want = torch.nn.functional.binary_cross_entropy_with_logits(out, target)
    assert float(train_module.loss_fn(out, target)) == pytest.approx(float(want), rel=1e-6)
    halves = [train_module.metric_sums(out[i : i + 70], target[i : i + 70]) for i in (0, 70, 140)]
    sums = {k: sum(float(h[k]) for h in halves) for k in halves[0]}  # summed over batches
    got = train_module.derived_metrics({k: v / len(y) for k, v in sums.items()})
    predicted = logits > 0
    assert got["f1_micro"] == pytest.approx(
        f1_score(y, predicted, average="micro", zero_division=0)
    )
    assert got["f1_macro"] == pytest.approx(
        f1_score(y, predicted, average="macro", zero_division=0)
    )
    assert got["exact"] == pytest.approx(accuracy_score(y, predicted))  # subset accuracy
    assert got["label_accuracy"] == pytest.approx(float((predicted == y).mean()))
    assert not any(k.startswith("_") for k in got)  # the counts F1 is made of are not reported


@pytest.mark.parametrize("seed", [0, 1])
def test_evaluate_scores_match_scikit_learn(seed):
    logits, y = _random_case(seed)
    got = scores(logits, y, "multilabel_logits", ["exact", "f1_micro", "f1_macro"])
    predicted = logits > 0
    assert got["f1_macro"] == pytest.approx(
        f1_score(y, predicted, average="macro", zero_division=0)
    )
    assert got["exact"] == pytest.approx(accuracy_score(y, predicted))
    probs = 1 / (1 + np.exp(-logits.astype(np.float64)))
    same = scores(probs, y, "multilabel_probabilities", ["f1_micro"])
    assert same["loss"] == pytest.approx(got["loss"], rel=1e-5) and same[
        "f1_micro"
    ] == pytest.approx(got["f1_micro"])


def test_mistakes_are_located(write_spec):
    base = SPEC.read_text()
    proc = run_specc(
        "check",
        write_spec(
            base.replace(
                "out_features: 3}",
                "out_features: 3}\n  - flatten\n  - {type: reshape, shape: [3, 1]}",
            )
        ),
    )
    (e,) = errors_of(proc)
    assert "one score per label (batch, labels), this one gives (3, 1)" in e["msg"]
    proc = run_specc(
        "check", write_spec(base.replace("description:", "labels: [even, prime]\ndescription:"))
    )
    (e,) = errors_of(proc)
    assert "the model gives 3 scores, but labels: names 2" in e["msg"]
    proc = run_specc(
        "check",
        write_spec(base.replace("monitor: val_exact", "monitor: val_exact\n  metrics: [accuracy]")),
    )
    messages = [e["msg"] for e in errors_of(proc)]
    assert any("metric 'accuracy' does not fit task 'multilabel'" in m for m in messages), messages


@pytest.mark.slow
def test_the_example_learns_the_three_labels_and_serves_them_through_onnx_runtime(tmp_path):
    out = tmp_path / "run"
    proc = run_specc("train", SPEC, "-o", out, "--quiet")
    assert proc.returncode == 0, proc.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["metrics"]["test_exact"] >= 0.9  # the spec's target, checked by specc too
    assert report["metrics"]["test_f1_macro"] >= 0.95
    with np.load(out / "data.npz") as f, np.load(out / "splits.npz") as s:
        x, y = f["x"][s["test"]], f["y"][s["test"]]
    ml = sr.MultiLabel(out, device="cpu")
    result = ml.predict(x)
    assert result.names == ["even", "greater_than_4", "prime"]
    model = ex.instantiate(out, out / report["weights"])
    with torch.no_grad():
        want = torch.sigmoid(model(torch.from_numpy(x))).numpy()
    assert np.abs(result.probabilities - want).max() < 1e-5
    assert (result.present == (want >= 0.5)).all()
    assert float((result.present == (y > 0.5)).all(axis=1).mean()) == pytest.approx(
        report["metrics"]["test_exact"], abs=1e-6
    )
    strict = ml.predict(x, threshold=0.9)
    assert strict.present.sum() <= result.present.sum()  # a higher threshold keeps fewer labels
    np.save(tmp_path / "x.npy", x[:3])
    proc = run_specc("predict", out, "-i", tmp_path / "x.npy", "--json")
    rows = json.loads(proc.stdout)
    assert [r["labels"] for r in rows] == result.labels[:3]
    with pytest.raises(sr.InputError, match="threshold"):
        ml.predict(x, threshold=1.5)
