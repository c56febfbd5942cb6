"""Crash safety and several processes: SIGKILL + --resume is bitwise the uninterrupted run;
Ctrl-C saves and resumes; torchrun with 2 processes matches one process for the same global batch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import numpy as np
import pytest
import torch
from helpers import SPECC, run_specc, specc_env

pytestmark = pytest.mark.slow

RESUMABLE = """\
specc: 1
name: resumable
task: classification
inputs: {pixels: {shape: [64]}}
model:
  - {type: linear, out_features: 64}
  - relu
  - {type: dropout, p: 0.3}
  - {type: linear, out_features: 10}
data: {type: builtin, name: digits}
train:
  epochs: 40
  batch_size: 32
  deterministic: true
  optimizer: {type: adam, lr: 0.002}
  schedule: {type: cosine, warmup_epochs: 1}
  checkpoint: {every_epochs: 0, every_steps: 7}
  log_every_steps: 20
"""


def _weights(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def _assert_bitwise_equal(a: dict, b: dict, what: str):
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], torch.Tensor):
            assert torch.equal(a[k], b[k]), f"{what}: {k} differs"
        elif isinstance(a[k], dict):
            _assert_bitwise_equal(a[k], b[k], f"{what}.{k}")
        else:
            assert a[k] == b[k], f"{what}: {k} differs"


def _epoch_rows(folder):
    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    timeless = [{k: v for k, v in r.items() if k not in ("seconds", "samples_per_s")} for r in rows]
    return timeless


def _start(*args):
    return subprocess.Popen(
        [SPECC, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=specc_env(),  # the same threads as the runs it is compared with: bitwise equal
        start_new_session=True,  # its own process group: the kill reaches train.py too
    )


def _wait_for_epoch(folder, epoch: int, proc, limit=120.0):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        path = folder / "metrics.jsonl"
        if path.exists() and any(
            f'"epoch", "epoch": {epoch},' in line for line in path.read_text().splitlines()
        ):
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.01)
    raise AssertionError(f"epoch {epoch} never finished")


def test_sigkill_then_resume_is_bitwise_the_uninterrupted_run(tmp_path):
    spec = tmp_path / "resumable.yaml"
    spec.write_text(RESUMABLE)
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    proc = run_specc("train", spec, "-o", whole, "--quiet")
    assert proc.returncode == 0, proc.stderr

    proc = _start("train", spec, "-o", killed, "--quiet")
    _wait_for_epoch(killed, 6, proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (killed / "results.json").exists(), "the run finished before it was killed"
    at = _weights(killed / "checkpoints" / "last.pt")["position"]
    assert at["step"] > 0

    proc = run_specc("train", spec, "-o", killed, "--resume", "--quiet")
    assert proc.returncode == 0, proc.stderr
    a, b = _weights(whole / "checkpoints" / "last.pt"), _weights(killed / "checkpoints" / "last.pt")
    for part in ("model", "optimizer", "schedule", "sums", "position", "best"):
        _assert_bitwise_equal(a[part], b[part], f"{part} (resumed from {at})")
    assert _epoch_rows(whole) == _epoch_rows(killed)
    assert np.array_equal(
        np.load(whole / "splits.npz")["val"], np.load(killed / "splits.npz")["val"]
    )


def test_ctrl_c_saves_a_checkpoint_and_resume_finishes(tmp_path):
    spec = tmp_path / "resumable.yaml"
    spec.write_text(RESUMABLE.replace("epochs: 40", "epochs: 12"))
    out = tmp_path / "run"
    proc = _start("train", spec, "-o", out)
    _wait_for_epoch(out, 2, proc)
    os.killpg(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "--resume" in stderr and "Traceback" not in stderr
    saved = _weights(out / "checkpoints" / "last.pt")["position"]
    assert saved["step"] > 0

    proc = run_specc("train", spec, "-o", out)
    assert proc.returncode == 1 and "--resume" in proc.stderr and "--overwrite" in proc.stderr

    proc = run_specc("train", spec, "-o", out, "--resume")
    assert proc.returncode == 0, proc.stderr
    assert (
        f"resumed from checkpoints/last.pt at epoch {saved['epoch']}, step {saved['step']}"
        in proc.stdout
    )
    report = json.loads((out / "report.json").read_text())
    assert report["epochs_run"] == 12
    epochs = [r["epoch"] for r in _epoch_rows(out) if r["kind"] == "epoch"]
    assert epochs == list(range(1, 13))


def test_corrupt_truncated_or_foreign_checkpoints_are_refused(tmp_path):
    spec = tmp_path / "resumable.yaml"
    spec.write_text(RESUMABLE.replace("epochs: 40", "epochs: 1"))
    out = tmp_path / "run"
    assert run_specc("train", spec, "-o", out, "--quiet").returncode == 0
    last = out / "checkpoints" / "last.pt"
    good = last.read_bytes()

    last.write_bytes(good[: len(good) // 2])
    proc = run_specc("train", spec, "-o", out, "--resume", "--quiet")
    assert proc.returncode == 1 and "not a readable checkpoint" in proc.stderr
    assert "Traceback" not in proc.stderr

    last.write_bytes(b"\x00garbage" * 100)
    proc = run_specc("train", spec, "-o", out, "--resume", "--quiet")
    assert proc.returncode == 1 and "not a readable checkpoint" in proc.stderr

    other = tmp_path / "other.yaml"
    other.write_text(RESUMABLE.replace("p: 0.3", "p: 0.25"))
    last.write_bytes(good)
    proc = run_specc("train", other, "-o", out, "--resume", "--quiet")
    # the run folder's manifest refuses it before train.py runs, naming what changed
    assert proc.returncode == 1 and "trained with another spec: model" in proc.stderr, proc.stderr
    # --set changes the spec's identity too
    proc = run_specc("train", spec, "-o", out, "--resume", "--quiet", "--set", "train.seed=3")
    assert proc.returncode == 1 and "another spec: train.seed differ" in proc.stderr, proc.stderr


DDP = """\
specc: 1
name: ddp
task: classification
inputs: {x: {shape: [8]}}
model:
  - {type: linear, out_features: 32}
  - tanh
  - {type: linear, out_features: 3}
data: {type: npz, path: d.npz, val_split: 0}
train:
  epochs: 3
  batch_size: 32
  optimizer: {type: sgd, lr: 0.1, momentum: 0.9}
  checkpoint: {restore_best: false}
"""


def test_two_processes_match_one_process_for_the_same_global_batch(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(320, 8)).astype(np.float32)  # 10 global batches of 32, none partial
    np.savez(tmp_path / "d.npz", x=x, y=(x[:, 0] > 0).astype(int) + (x[:, 1] > 1).astype(int))
    (tmp_path / "ddp.yaml").write_text(DDP)
    one, two = tmp_path / "one", tmp_path / "two"
    proc = run_specc("train", tmp_path / "ddp.yaml", "-o", one, "--quiet")
    assert proc.returncode == 0, proc.stderr
    proc = run_specc("train", tmp_path / "ddp.yaml", "-o", two, "--nproc", "2", "--quiet")
    assert proc.returncode == 0, proc.stderr + proc.stdout

    ranks = json.loads((two / "ranks.json").read_text())
    assert ranks["world_size"] == 2 and len(set(ranks["params_sha256"])) == 1
    a = _weights(one / "checkpoints" / "last.pt")
    b = _weights(two / "checkpoints" / "last.pt")
    assert a["position"] == b["position"]  # same steps and examples
    for k, v in a["model"].items():
        torch.testing.assert_close(b["model"][k], v, rtol=0, atol=1e-5)
    assert json.loads((two / "report.json").read_text())["world_size"] == 2
