"""The `train:` section and `--set`: located errors for every mistake, overrides that validate
like the file and name themselves when wrong, and the resolved spec recorded with the run."""

from __future__ import annotations

import json

import pytest
from helpers import run_specc

from specc.compiler.diagnostics import SpecError
from specc.compiler.pipeline import compile_file

HEAD = """\
specc: 1
name: t
task: {task}
inputs: {{x: {{shape: [4]}}}}
model:
  - {{type: linear, out_features: {out}}}
train:
"""


def errors(write_spec, train: str, task="classification", out=3, overrides=()):
    path = write_spec(HEAD.format(task=task, out=out) + train)
    with pytest.raises(SpecError) as e:
        compile_file(path, overrides)
    return [(d.pos.line if d.pos else None, d.path, d.message, d.hint) for d in e.value.diagnostics]


@pytest.mark.parametrize(
    "train,line,message",
    [
        (
            "  optimizer: {type: sgd, nesterov: true}\n",
            8,
            "nesterov needs type sgd and momentum > 0",
        ),
        ("  optimizer: {type: adam, momentum: 0.9}\n", 8, "momentum applies to sgd and rmsprop"),
        ("  optimizer: {type: lion}\n", 8, "'type'"),
        ("  schedule: {type: one_cycle, warmup_epochs: 1}\n", 8, "unknown key 'warmup_epochs'"),
        ("  schedule: {type: multistep, milestones: [5, 3]}\n", 8, "strictly increasing"),
        ("  schedule: cosinus\n", 8, "'type'"),
        (
            "  loss: {type: mse, label_smoothing: 0.1}\n",
            8,
            "label_smoothing applies to cross_entropy",
        ),
        ("  loss: mse\n", 8, "loss 'mse' does not fit task 'classification'"),
        ("  metrics: [accuracy, top7]\n", 8, "top7 needs more than 7 classes, the model has 3"),
        ("  metrics: [precision]\n", 8, "metric 'precision' is unknown"),
        ("  metrics: [mae]\n", 8, "metric 'mae' does not fit task 'classification'"),
        ("  monitor: val_acuracy\n", 8, "cannot monitor 'val_acuracy'"),
        ("  target: {metric: val_accuracy}\n", 8, "give exactly one of min, max"),
        ("  target: {metric: test_accuracy, min: 0.9}\n", 8, "'test_accuracy' needs a test split"),
        ("  accumulate_steps: 0\n", 8, "greater than 0"),
        ("  precision: fp8\n", 8, "'precision'"),
        ("  on_nan: retry\n", 8, "'action'"),
        ("  early_stopping: {patience: 0}\n", 8, "greater than 0"),
    ],
)
def test_train_section_mistakes_are_located(write_spec, train, line, message):
    found = errors(write_spec, train)
    assert any(ln == line and message in msg for ln, _, msg, _ in found), found


def test_monitor_suggests_the_closest_metric(write_spec):
    ((_, _, _, hint),) = errors(write_spec, "  monitor: val_acuracy\n")
    assert hint == "did you mean 'val_accuracy'?"


def test_binary_and_multiclass_losses_must_fit_the_output(write_spec):
    found = errors(write_spec, "  loss: binary_cross_entropy\n", out=3)
    assert "binary_cross_entropy needs one output unit" in found[0][2]
    found = errors(write_spec, "  loss: cross_entropy\n", out=1)
    assert "cross_entropy needs one output per class" in found[0][2]
    found = errors(write_spec, "  metrics: [top2]\n", out=1)
    assert "top2 needs more than 2 classes" in found[0][2]


def test_defaults_resolve_by_optimizer_and_task(write_spec):
    c = compile_file(write_spec(HEAD.format(task="classification", out=1) + "  optimizer: sgd\n"))
    assert c.spec.train.optimizer.lr == 0.01 and c.plan.loss == "binary_cross_entropy"
    c = compile_file(write_spec(HEAD.format(task="regression", out=2) + "  optimizer: adamw\n"))
    assert c.spec.train.optimizer.weight_decay == 0.01
    assert c.plan.loss == "mse" and c.plan.metrics == ("mse", "mae")
    assert c.plan.monitor == "val_loss" and c.plan.monitor_mode == "min"
    c = compile_file(
        write_spec(HEAD.format(task="classification", out=3) + "  monitor: val_accuracy\n")
    )
    assert c.plan.monitor_mode == "max"


# ----------------------------------------------------------------------------- --set


def test_overrides_apply_and_change_the_identity(write_spec):
    path = write_spec(HEAD.format(task="classification", out=3) + "  epochs: 5\n")
    base = compile_file(path)
    c = compile_file(
        path,
        ["train.epochs=3", "train.optimizer={type: sgd, momentum: 0.9}", "model.0.out_features=4"],
    )
    assert c.spec.train.epochs == 3 and c.spec.train.optimizer.type == "sgd"
    assert c.parsed.layers[0].out_features == 4 and c.inferred.total_params == 4 * 4 + 4
    assert c.sha256 != base.sha256
    assert compile_file(path, ["train.epochs=5"]).sha256 != base.sha256  # named, so recorded


@pytest.mark.parametrize(
    "override,message",
    [
        ("train.epochs=abc", "invalid 'epochs'"),
        ("train.epoch=3", "unknown key 'epoch'"),
        ("train.optimizer.lr=-1", "greater than 0"),
        ("train.epochs", "expected KEY=VALUE"),
        ("=3", "expected KEY=VALUE"),
        ("model.9.out_features=3", "no item 9 in a list of 1"),
        ("train.epochs=[1, 2", "cannot read the value as YAML"),
        ("train.epochs.x=1", "holds a single value"),
    ],
)
def test_bad_overrides_name_themselves(write_spec, override, message):
    found = errors(write_spec, "  epochs: 5\n", overrides=[override])
    assert any(p == f"--set {override}" and message in m for _, p, m, _ in found), found


def test_set_on_the_command_line(write_spec, tmp_path):
    path = write_spec(HEAD.format(task="classification", out=3) + "  epochs: 5\n")
    proc = run_specc("check", path, "--set", "train.epoch=2")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("--set train.epoch=2: error: unknown key 'epoch'")
    assert "did you mean 'epochs'?" in proc.stderr
    proc = run_specc("build", path, "-o", tmp_path / "b", "--no-verify", "--set", "train.epochs=2")
    assert proc.returncode == 0, proc.stderr
    recorded = json.loads((tmp_path / "b" / "spec.json").read_text())
    assert recorded["overrides"] == ["train.epochs=2"] and recorded["spec"]["train"]["epochs"] == 2
    assert '"epochs": 2,' in (tmp_path / "b" / "train.py").read_text()
