"""Nothing a user owns is lost, runs continue only as what they were, and what specc ships is
the same bytes wherever it is built: run folders (compiler/run_folder.py), resuming with more
epochs, reproducible exports, and a full disk."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import SPECS, run_specc

XOR = SPECS / "xor.yaml"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_build_refuses_a_folder_that_is_not_specc_and_rebuilds_its_own(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "model.py").write_text("my own work\n")
    proc = run_specc("build", XOR, "-o", mine, "--no-verify")
    assert (
        proc.returncode == 1
        and "is not a specc folder" in proc.stderr
        and "Traceback" not in proc.stderr
    )
    assert (mine / "model.py").read_text() == "my own work\n"
    out = tmp_path / "out"
    for _ in range(2):  # specc's own build folder is rebuilt in place
        assert run_specc("build", XOR, "-o", out, "--no-verify").returncode == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["files"]) == {"model.py", "train.py", "spec.json"}


def test_overwrite_removes_only_what_specc_wrote_and_says_so(tmp_path):
    run = tmp_path / "run"
    assert run_specc(
        "train", XOR, "-o", run, "--quiet", "--set", "train.epochs=2", "--set", "train.target.min=0"
    ).returncode in (0, 1)
    assert (run / "checkpoints" / "last.pt").is_file() and (run / "manifest.json").is_file()
    for name in ("notes.txt", "checkpoints/mine.pt", "samples/keep.png"):
        (run / name).parent.mkdir(exist_ok=True)
        (run / name).write_text("the user's\n")
    proc = run_specc("train", XOR, "-o", run, "--quiet")
    assert proc.returncode == 1 and "--resume" in proc.stderr and "--overwrite" in proc.stderr
    proc = run_specc("build", XOR, "-o", run, "--no-verify")
    assert proc.returncode == 1 and "holds a training run" in proc.stderr
    proc = run_specc("train", XOR, "-o", run, "--quiet", "--overwrite", "--set", "train.epochs=1")
    said = proc.stdout + proc.stderr
    assert "--overwrite removed" in said and "checkpoints/last.pt" in said and "model.onnx" in said
    assert "notes.txt" not in said.split("--overwrite removed", 1)[1].splitlines()[0]
    for name in ("notes.txt", "checkpoints/mine.pt", "samples/keep.png"):
        assert (run / name).read_text() == "the user's\n", name


@pytest.mark.slow
def test_a_finished_run_continues_for_more_epochs_exactly_as_one_longer_run(tmp_path):
    """--resume with more train.epochs continues bitwise where an uninterrupted run would be;
    any other change is refused, naming what changed."""
    common = ["--quiet", "--set", "train.deterministic=true", "--set", "train.target.min=0"]
    straight, extended = tmp_path / "straight", tmp_path / "extended"
    assert (
        run_specc("train", XOR, "-o", straight, *common, "--set", "train.epochs=30").returncode == 0
    )
    assert (
        run_specc("train", XOR, "-o", extended, *common, "--set", "train.epochs=20").returncode == 0
    )
    proc = run_specc("train", XOR, "-o", extended, "--resume", *common, "--set", "train.epochs=30")
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in (extended / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows if r["kind"] == "epoch"] == list(range(1, 31))
    a = torch.load(straight / "checkpoints" / "last.pt", weights_only=True)["model"]
    b = torch.load(extended / "checkpoints" / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    proc = run_specc(
        "train", XOR, "-o", extended, "--resume", *common, "--set", "train.optimizer.lr=0.5"
    )
    assert (
        proc.returncode == 1
        and "train.optimizer.lr" in proc.stderr
        and "train.epochs" in proc.stderr
    )


@pytest.mark.slow
def test_two_deterministic_runs_export_the_same_bytes_and_no_path_of_the_machine(tmp_path):
    common = ["--quiet", "--set", "train.deterministic=true", "--set", "train.epochs=20"]
    runs = [tmp_path / "first", tmp_path / "elsewhere" / "second"]
    for run in runs:
        assert run_specc("train", SPECS / "rnn_hello.yaml", "-o", run, *common).returncode == 0
    for name in ("model.onnx", "step.onnx"):
        assert _sha(runs[0] / name) == _sha(runs[1] / name), name
        raw = (runs[1] / name).read_bytes()
        for path in (str(tmp_path), str(Path.home()), sys.prefix, "site-packages"):
            assert path.encode() not in raw, (name, path)


@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("mount"), reason="mounting a tmpfs needs root"
)
def test_a_full_disk_is_one_message_and_leaves_no_partial_file(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True
    ).returncode:
        pytest.skip("this machine does not let the tests mount a tmpfs")
    try:
        run = disk / "run"
        proc = run_specc("train", SPECS / "lenet5.yaml", "-o", run, "--quiet")  # data.npz: 5.6 MB
        assert proc.returncode == 1 and "Traceback" not in proc.stderr
        assert "no space left on the device to write" in proc.stderr and "data.npz" in proc.stderr
        assert "MB" in proc.stderr
        assert not any(p.name.endswith(".tmp") or p.name == "data.npz" for p in run.rglob("*"))
    finally:
        subprocess.run(["umount", str(disk)], check=False)
