"""Tracking in MLflow, read back through MLflow's own client and compared with the run folder:
params from spec.json, every epoch of metrics.jsonl, the exported model's metrics, the files.
(Tune trials as child runs of one parent: tests/test_tune.py.)"""

import json
from pathlib import Path

import pytest
from helpers import SPECS, run_specc

from specc.compiler import runs, tracking
from specc.compiler.diagnostics import UserError

mlflow = pytest.importorskip("mlflow")


def test_a_spec_flattens_to_mlflow_params():
    doc = {
        "name": "x",
        "train": {"optimizer": {"lr": 0.001, "betas": [0.9, 0.999]}, "tensorboard": False},
        "model": [{"type": "linear", "out_features": 4}, {"type": "relu"}],
        "labels": ["cat", "dog"],
        "odd key!": 1,
    }
    assert tracking.flatten(doc) == {
        "name": "x",
        "train.optimizer.lr": "0.001",
        "train.optimizer.betas": "[0.9, 0.999]",
        "train.tensorboard": "false",
        "model.0.type": "linear",
        "model.0.out_features": "4",
        "model.1.type": "relu",
        "labels": '["cat", "dog"]',
        "odd key_": "1",
    }
    assert len(tracking.flatten({"s": "y" * 10000})["s"]) == tracking.MAX_PARAM


def test_nothing_is_tracked_unless_asked(tmp_path, monkeypatch):
    from specc.compiler.pipeline import compile_file

    compiled = compile_file(SPECS / "mlp_digits.toml")
    assert tracking.tracker_for(compiled, tmp_path, None) is None
    assert tracking.tracker_for(compiled, tmp_path, "none") is None
    with pytest.raises(UserError, match="use mlflow or none"):
        tracking.tracker_for(compiled, tmp_path, "wandb")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    assert tracking.store_uri(None) == f"sqlite:///{tmp_path / 'runs' / 'mlflow' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://example.invalid:5000")
    assert tracking.store_uri(None) == "http://example.invalid:5000"
    assert tracking.store_uri("sqlite:///x.db") == "sqlite:///x.db"


def test_a_store_that_cannot_be_used_is_refused_before_training(tmp_path):
    out = tmp_path / "run"
    proc = run_specc("train", SPECS / "mlp_digits.toml", "-o", out, "--tracking-uri", "bogus://x")
    assert proc.returncode == 1, proc.stderr
    assert "cannot use the MLflow tracking store bogus://x" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (out / "metrics.jsonl").exists()
    bad = run_specc("check", SPECS / "mlp_digits.toml", "--set", "train.track=wandb")
    assert bad.returncode == 1 and "--set train.track=wandb" in bad.stderr


@pytest.mark.slow
def test_a_tracked_run_matches_its_folder_and_a_resume_goes_on_in_the_same_mlflow_run(tmp_path):
    spec = SPECS / "mlp_digits.toml"
    common = ["--set", "train.track=mlflow", "--set", "train.target.min=0.5", "--quiet"]
    proc = run_specc("train", spec, "--set", "train.epochs=2", *common, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    run_dir = tmp_path / "runs" / "mlp_digits"
    store = tmp_path / "runs" / "mlflow" / "mlflow.db"  # the default store, under the project
    assert store.is_file()
    state = json.loads((run_dir / "tracking.json").read_text())
    assert state["uri"] == f"sqlite:///{store}"
    client = mlflow.tracking.MlflowClient(state["uri"])
    run = client.get_run(state["run_id"])
    assert run.info.status == "FINISHED" and run.info.run_name == "mlp_digits"
    assert client.get_experiment(run.info.experiment_id).name == "mlp_digits"

    settings = json.loads((run_dir / "spec.json").read_text())["spec"]
    params = run.data.params
    assert params["train.optimizer.lr"] == repr(settings["train"]["optimizer"]["lr"])
    assert params["train.epochs"] == "2"
    assert params["model.0.out_features"] == "128"
    assert params["data.name"] == "digits"
    assert len(params) == len(tracking.flatten(settings))

    rows = runs.epoch_rows(run_dir / "metrics.jsonl")
    assert [r["epoch"] for r in rows] == [1, 2]
    for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr"):
        history = client.get_metric_history(run.info.run_id, key)
        assert [(m.step, m.value) for m in history] == [(r["epoch"], r[key]) for r in rows]
    report = json.loads((run_dir / "report.json").read_text())
    for key, value in report["metrics"].items():
        assert run.data.metrics[f"final/{key}"] == pytest.approx(value, rel=1e-12)
    assert run.data.tags["specc.status"] == "finished"
    assert run.data.tags["specc.target_met"] == "true"
    assert run.data.tags["specc.folder"] == str(run_dir.resolve())
    files = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"model.onnx", "metrics.png", "report.json", "spec.json", "metrics.jsonl"} <= files
    got = Path(client.download_artifacts(run.info.run_id, "model.onnx", str(tmp_path)))
    assert got.read_bytes() == (run_dir / "model.onnx").read_bytes()
    assert (tmp_path / "runs" / "mlflow" / "artifacts").is_dir()
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "mlflow.db").exists()

    # one epoch more: the same MLflow run goes on, no epoch twice
    more = run_specc("train", spec, "--set", "train.epochs=3", *common, "--resume", cwd=tmp_path)
    assert more.returncode == 0, more.stderr
    assert json.loads((run_dir / "tracking.json").read_text())["run_id"] == state["run_id"]
    run = client.get_run(state["run_id"])
    rows = runs.epoch_rows(run_dir / "metrics.jsonl")
    history = client.get_metric_history(run.info.run_id, "val_loss")
    assert [(m.step, m.value) for m in history] == [(r["epoch"], r["val_loss"]) for r in rows]
    assert [m.step for m in history] == [1, 2, 3]
    assert run.data.params["train.epochs"] == "2"  # MLflow keeps a param's first value
    assert run.data.tags["specc.resumed.train.epochs"] == "3"
    assert run.info.status == "FINISHED"
    assert len(client.search_runs([run.info.experiment_id])) == 1

    listed = run_specc("runs", cwd=tmp_path)  # runs/mlflow is the store, not a run
    assert [line.split()[0] for line in listed.stdout.splitlines()[2:]] == ["mlp_digits"]
