"""Runs you can compare: a new run without -o gets a folder of its own, `specc runs` tells what
became of each run, `specc compare` puts runs side by side (table and one plot)."""

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from helpers import SPECS, run_specc

from specc.compiler import runs


def test_fresh_folders_count_up_and_two_runs_started_together_never_share_one(tmp_path):
    base = tmp_path / "runs" / "mlp"
    assert runs.fresh_folder(base) == base
    assert runs.fresh_folder(base) == base.with_name("mlp-2")
    got = []
    threads = [
        threading.Thread(target=lambda: got.append(runs.fresh_folder(base))) for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(got)) == 8
    assert {p.name for p in got} == {f"mlp-{k}" for k in range(3, 11)}


def test_resume_without_o_takes_the_newest_run_of_the_specs_name(tmp_path):
    base = tmp_path / "runs" / "mlp"
    for name in ("mlp", "mlp-2", "mlp-7", "mlp-12", "mlpx-20"):
        (tmp_path / "runs" / name).mkdir(parents=True)
    # mlp-12 was written by a spec *named* "mlp-12": not a run of "mlp"
    other = tmp_path / "runs" / "mlp-12"
    (other / "spec.json").write_text(json.dumps({"spec": {"name": "mlp-12"}}))
    assert runs.newest_folder(base) == tmp_path / "runs" / "mlp-7"
    assert runs.newest_folder(tmp_path / "runs" / "none") == tmp_path / "runs" / "none"


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _folder(path: Path, state: dict | None = None, files=()) -> Path:
    path.mkdir(parents=True)
    if state is not None:
        (path / "run.json").write_text(json.dumps(state))
    for name in files:
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text("{}")
    return path


def test_status_says_what_became_of_a_run(tmp_path):
    me = {"pid": os.getpid(), "host": socket.gethostname(), "started": 1.0}
    dead = {**me, "pid": _dead_pid()}
    cases = {
        "running": _folder(tmp_path / "a", me),
        "killed": _folder(tmp_path / "b", dead),
        "interrupted": _folder(tmp_path / "c", {**dead, "exit_code": 130}),
        "diverged": _folder(tmp_path / "d", {**dead, "exit_code": 4}),
        "failed": _folder(tmp_path / "e", {**dead, "exit_code": 1}),
        "finished": _folder(tmp_path / "f", {**dead, "exit_code": 0}, ["report.json"]),
        "pruned": _folder(tmp_path / "g", {**dead, "exit_code": 130, "pruned_at": 3}),
        # exported? no: train.py ended well and specc died before report.json
        "failed ": _folder(tmp_path / "h", {**dead, "exit_code": 0}),
        # folders from before run.json
        "finished ": _folder(tmp_path / "i", None, ["report.json"]),
        "interrupted ": _folder(tmp_path / "j", None, ["checkpoints/last.pt"]),
        "built": _folder(tmp_path / "k", None, ["spec.json"]),
    }
    for want, path in cases.items():
        assert runs.status(path) == want.strip(), path
    # a run on another machine cannot be checked: it is taken at its word
    other = _folder(tmp_path / "l", {**dead, "host": "elsewhere.example"})
    assert runs.status(other) == "running"


def test_epoch_tail_reads_lines_as_they_come(tmp_path):
    path = tmp_path / "metrics.jsonl"
    tail = runs.EpochTail(path)
    assert tail.new_rows() == []
    row1 = {"kind": "epoch", "epoch": 1, "val_loss": 0.5}
    with open(path, "w") as f:
        f.write(json.dumps(row1) + "\n" + json.dumps({"kind": "step", "step": 5}) + "\n")
        f.write('{"kind": "epoch", "epo')  # half a line: train.py is writing it
    assert tail.new_rows() == [row1]
    with open(path, "a") as f:
        f.write('ch": 2, "val_loss": 0.25}\n')
    assert tail.new_rows() == [{"kind": "epoch", "epoch": 2, "val_loss": 0.25}]
    assert tail.new_rows() == []
    path.write_text(json.dumps(row1) + "\n")  # a resume cut the file back
    assert tail.new_rows() == [row1]


def test_runs_and_compare_refuse_what_is_not_there(tmp_path):
    proc = run_specc("runs", tmp_path / "nothing")
    assert proc.returncode == 1 and "no such folder" in proc.stderr
    assert "Traceback" not in proc.stderr
    (tmp_path / "x").mkdir()
    proc = run_specc("compare", tmp_path / "x", tmp_path / "x")
    assert proc.returncode == 1 and "is not a run folder" in proc.stderr
    proc = run_specc("compare", tmp_path / "x")
    assert proc.returncode == 1 and "two or more" in proc.stderr


def _table(stdout: str) -> dict[str, list[str]]:
    """`specc compare`'s rows by their first cell (cells are separated by two spaces)."""
    rows = {}
    for line in stdout.splitlines()[2:]:
        cells = [c for c in line.split("  ") if c.strip()]
        if cells:
            rows[cells[0].strip()] = [c.strip() for c in cells[1:]]
    return rows


@pytest.mark.slow
def test_runs_without_o_never_collide_and_are_listed_and_compared(tmp_path):
    spec = SPECS / "mlp_digits.toml"
    short = ["--set", "train.epochs=2", "--set", "train.target.min=0.5", "--quiet"]
    first = run_specc("train", spec, *short, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    second = run_specc("train", spec, *short, "--set", "train.optimizer.lr=0.01", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    a, b = tmp_path / "runs" / "mlp_digits", tmp_path / "runs" / "mlp_digits-2"
    assert (a / "report.json").is_file() and (b / "report.json").is_file()
    # --resume without -o continues the newest run (train it one epoch longer)
    longer = ["--set", "train.epochs=3", "--set", "train.target.min=0.5", "--quiet"]
    resumed = run_specc(
        "train", spec, *longer, "--set", "train.optimizer.lr=0.01", "--resume", cwd=tmp_path
    )
    assert resumed.returncode == 0, resumed.stderr
    assert len(runs.epoch_rows(b / "metrics.jsonl")) == 3
    assert len(runs.epoch_rows(a / "metrics.jsonl")) == 2

    listed = run_specc("runs", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    lines = {line.split()[0]: line for line in listed.stdout.splitlines()[2:]}
    assert set(lines) == {"mlp_digits", "mlp_digits-2"}
    assert "finished" in lines["mlp_digits"] and "2/2" in lines["mlp_digits"]
    assert "train.optimizer.lr=0.01" in lines["mlp_digits-2"] and "3/3" in lines["mlp_digits-2"]
    doc = json.loads(run_specc("runs", "--json", cwd=tmp_path).stdout)
    by_name = {r["name"]: r for r in doc["runs"]}
    results = json.loads((b / "results.json").read_text())
    assert by_name["mlp_digits-2"]["best"] == results["monitor"]["best"]
    assert by_name["mlp_digits-2"]["status"] == "finished"

    compared = run_specc("compare", a, b, "-o", tmp_path / "cmp.png", cwd=tmp_path)
    assert compared.returncode == 0, compared.stderr
    rows = _table(compared.stdout)
    assert rows["train.optimizer.lr"] == ["0.001", "0.01"]
    assert rows["train.epochs"] == ["2", "3"]
    for key in ("val_accuracy", "val_loss", "test_accuracy"):
        want = [json.loads((p / "report.json").read_text())["metrics"][key] for p in (a, b)]
        got = [float(v.rstrip("*")) for v in rows[key]]
        assert got == pytest.approx(want, abs=5e-5)
        better = (max if key.endswith("accuracy") else min)(want)
        assert [v.endswith("*") for v in rows[key]] == [w == better for w in want]
    import numpy as np
    from PIL import Image

    with Image.open(tmp_path / "cmp.png") as im:
        assert im.size[0] > 600 and im.size[1] > 300
        assert len(np.unique(np.asarray(im.convert("L")))) > 20  # curves, not a blank canvas

    # the default folders are run folders: their manifest names files in them (not
    # runs/NAME/model.py), so --overwrite without -o removes what specc wrote and only that
    listed = json.loads((b / "manifest.json").read_text())["files"]
    assert {"model.py", "train.py", "spec.json", "model.onnx", "report.json"} <= set(listed)
    assert not [f for f in listed if f.startswith("runs/")]
    (b / "notes.txt").write_text("mine")
    again = run_specc("train", spec, *short, "--overwrite", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    said = next(line for line in again.stdout.splitlines() if "--overwrite removed" in line)
    for name in ("model.py", "train.py", "spec.json", "model.onnx", "report.json", "run.json"):
        assert f" {name}," in said or said.endswith(f" {name}")
    assert (b / "notes.txt").read_text() == "mine"
    assert len(runs.epoch_rows(b / "metrics.jsonl")) == 2  # trained anew


def test_a_manifest_names_files_in_the_folder_however_the_folder_was_given(tmp_path, monkeypatch):
    from specc.compiler.run_folder import RunFolder

    monkeypatch.chdir(tmp_path)
    folder = RunFolder(Path("runs") / "checkpoints")  # a folder named like one inside runs
    folder.path.mkdir(parents=True)
    folder.record(folder.path / "model.py", folder.path / "checkpoints" / "last.pt")
    folder.record((tmp_path / "runs" / "checkpoints" / "report.json").resolve())
    assert folder.files() == ["model.py", "checkpoints/last.pt", "report.json"]
    with pytest.raises(ValueError, match="not in"):
        folder.record(tmp_path / "elsewhere.txt")
