"""The training machinery every generated train.py inlines (compiler/train/), tested as the
ordinary Python it is: data order, splits, checkpoints, pictures, evaluation, and the inliner."""

from __future__ import annotations

import ast
import contextlib
import io
import random
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import REPO
from PIL import Image

from specc.compiler.inline import add_imports, inline
from specc.compiler.train import MACHINERY, checkpoints, data, evaluation, images, loop, progress
from specc.compiler.train.errors import TrainingError
from specc.runtime.png import png_bytes


def test_epoch_order_visits_every_example_once_and_repeats_by_seed_and_epoch():
    order = data.EpochOrder(n=100, batch_size=10, seed=3)
    order.set_epoch(1)
    first = list(order)
    assert sorted(torch.cat(first).tolist()) == list(range(100))
    assert [b.tolist() for b in first] == [b.tolist() for b in order]  # recomputable
    order.set_epoch(2)
    assert torch.cat(list(order)).tolist() != torch.cat(first).tolist()


def test_epoch_order_resumes_where_it_stopped_and_splits_batches_across_processes():
    whole = data.EpochOrder(n=96, batch_size=12, seed=1)
    whole.set_epoch(4)
    batches = [b.tolist() for b in whole]
    whole.set_epoch(4, skip=3)
    assert [b.tolist() for b in whole] == batches[3:] and len(whole) == len(batches) - 3
    ranks = [data.EpochOrder(n=96, batch_size=12, seed=1, rank=r, world=2) for r in range(2)]
    for r in ranks:
        r.set_epoch(4)
    for k, (a, b) in enumerate(zip(*ranks, strict=True)):
        assert a.tolist() + b.tolist() == batches[k]  # the two halves of the one-process batch


def test_a_last_batch_too_small_to_share_is_dropped():
    assert data.EpochOrder(n=21, batch_size=10, seed=0, world=1).batches_per_epoch() == 3
    assert data.EpochOrder(n=21, batch_size=10, seed=0, world=2).batches_per_epoch() == 2


def test_splits_are_disjoint_seeded_and_sized(monkeypatch):
    monkeypatch.setattr(data, "VAL_SPLIT", 0.2)
    monkeypatch.setattr(data, "TEST_SPLIT", 0.1)
    s = data.split_indices(200, seed=5)
    assert (len(s["train"]), len(s["val"]), len(s["test"])) == (140, 40, 20)
    assert len(set(s["train"]) | set(s["val"]) | set(s["test"])) == 200
    assert all(
        (a == b).all()
        for a, b in zip(s.values(), data.split_indices(200, seed=5).values(), strict=True)
    )
    monkeypatch.setattr(data, "VAL_SPLIT", 0.0)
    s = data.split_indices(200, seed=5)
    assert (s["val"] == s["train"]).all()  # validated on the train split


def test_load_data_checks_shapes_and_names_what_it_expected(tmp_path, monkeypatch):
    monkeypatch.setattr(
        data, "DATA_INPUTS", {"x": {"dims": ["batch", "time", 3], "dtype": "float32"}}
    )
    monkeypatch.setattr(data, "TARGET_DTYPE", np.int64)
    np.savez(
        tmp_path / "ok.npz", x=np.zeros((4, 7, 3), dtype=np.float64), y=np.array([0.0, 1, 2, 3])
    )
    (x,), y = data.load_data(tmp_path / "ok.npz")
    assert x.shape == (4, 7, 3) and y.dtype == np.int64  # inputs stay on disk as written
    batch = data.Rows(x, np.arange(4), np.float32)[np.array([1, 3])]  # cast as a batch is read
    assert batch.dtype == torch.float32 and tuple(batch.shape) == (2, 7, 3)
    np.savez(tmp_path / "bad.npz", x=np.zeros((4, 7, 2)), y=np.zeros(4))
    with pytest.raises(TrainingError, match=r"input 'x' has shape \(7, 2\).*expects \('time', 3\)"):
        data.load_data(tmp_path / "bad.npz")
    np.savez(tmp_path / "no_y.npz", x=np.zeros((4, 7, 3)))
    with pytest.raises(TrainingError, match="arrays x and y expected"):
        data.load_data(tmp_path / "no_y.npz")


def test_checkpoints_round_trip_and_refuse_another_specs_or_a_torn_file(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoints, "SPEC_SHA256", "a" * 64)
    state = {"format": 1, "spec_sha256": "a" * 64, "model": {"w": torch.arange(3.0)}}
    path = tmp_path / "checkpoints" / "last.pt"
    checkpoints.save_checkpoint(path, state)
    assert torch.equal(checkpoints.load_checkpoint(path)["model"]["w"], torch.arange(3.0))
    assert list(path.parent.iterdir()) == [path]  # no temporary file left
    monkeypatch.setattr(checkpoints, "SPEC_SHA256", "b" * 64)
    with pytest.raises(TrainingError, match="written for another spec"):
        checkpoints.load_checkpoint(path)
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(TrainingError, match="not a readable checkpoint"):
        checkpoints.load_checkpoint(path)


def test_a_failed_checkpoint_write_leaves_the_previous_one_and_no_temporary_file(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(checkpoints, "SPEC_SHA256", "a" * 64)
    path = tmp_path / "last.pt"
    checkpoints.save_checkpoint(path, {"format": 1, "spec_sha256": "a" * 64, "step": 1})

    def full_disk(obj, f):
        f.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoints.torch, "save", full_disk)
    with pytest.raises(OSError, match="No space"):
        checkpoints.save_checkpoint(path, {"step": 2})
    monkeypatch.undo()
    monkeypatch.setattr(checkpoints, "SPEC_SHA256", "a" * 64)
    assert checkpoints.load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_rng_state_restores_every_generator():
    state = checkpoints.rng_state()
    draws = (torch.rand(3), np.random.rand(3), random.random())
    checkpoints.set_rng_state(state)
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert (
        torch.equal(draws[0], again[0])
        and np.array_equal(draws[1], again[1])
        and draws[2] == again[2]
    )


def test_png_bytes_decode_to_the_same_pixels():
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    color = np.random.default_rng(0).integers(0, 256, (5, 2, 3), dtype=np.uint8)
    for picture in (gray, color):
        decoded = np.asarray(Image.open(io.BytesIO(png_bytes(picture))))
        assert np.array_equal(decoded, picture)


def test_sample_grids_lay_out_rows_with_gray_lines(tmp_path):
    rows = [np.zeros((3, 2, 2), np.float32), np.ones((2, 2, 2), np.float32)]
    images.write_grid(rows, tmp_path / "g.png", scale=1)
    pixels = np.asarray(Image.open(tmp_path / "g.png"))
    assert pixels.shape == (2 * 3 + 1, 3 * 3 + 1)
    assert pixels[0].tolist() == [128] * 10  # the top gray line
    assert pixels[1:3, 1:3].max() == 0 and pixels[4:6, 1:3].min() == 255
    assert pixels[4:6, 7:9].tolist() == [[128, 128], [128, 128]]  # the second row is shorter: gray
    assert (
        images.as_images(torch.full((2, 1, 2, 2), 3.0)).max() <= 1.0
    )  # out-of-range values rescaled


def test_metrics_png_is_a_grid_of_at_most_three_panels_a_row(tmp_path, monkeypatch):
    rows = [
        {
            "epoch": e,
            **{
                f"{s}_{m}": (i + 1.0) / e  # curves of their own: a repeated one shares a panel
                for s in ("train", "val")
                for i, m in enumerate(("loss", "a", "b", "c", "d"))
            },
        }
        for e in (1, 2)
    ]
    progress.plot_metrics(rows, tmp_path / "metrics.png")
    width, height = Image.open(tmp_path / "metrics.png").size
    assert (width, height) == (1500, 720)  # 5 panels: 3 + 2, at 100 dpi


def test_evaluate_averages_the_batch_sums_and_restores_the_mode(monkeypatch):
    def evaluate_batch(model, xb, yb, draws):
        return {
            "loss": (model(xb[0]).squeeze(1) - yb).square().sum().double(),
            "count": torch.tensor(float(len(yb))),
        }

    monkeypatch.setattr(evaluation, "evaluate_batch", evaluate_batch)
    model = torch.nn.Linear(1, 1)
    with torch.no_grad():
        model.weight.fill_(2.0)
        model.bias.fill_(0.0)
    x, y = torch.arange(10.0)[:, None], torch.arange(10.0)
    model.train()
    scores = evaluation.evaluate(model, (x,), y, "cpu", contextlib.nullcontext, batch_size=3)
    assert scores == pytest.approx({"loss": float((x.squeeze(1) ** 2).mean()), "count": 1.0})
    assert model.training


def test_scale_lr_scales_the_optimizer_and_what_its_schedules_start_from():
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    schedule = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    loop.scale_lr(optimizer, [schedule], 0.5)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.05) and schedule.base_lrs == [
        pytest.approx(0.05)
    ]


def test_inlined_modules_carry_no_specc_import_and_no_docstring():
    for module in MACHINERY:
        part = inline(module)
        assert not any("specc" in line or "from ." in line for line in part.imports), module
        assert not part.body.lstrip().startswith('"""'), module
        ast.parse(part.body)


def test_add_imports_keeps_exactly_the_imports_the_code_uses():
    code = "# @imports\n\nx = np.zeros(3)\ny = Path('a')\n"
    out = add_imports(
        code, ["import numpy as np", "import torch", "from pathlib import Path, PurePath"]
    )
    assert out.splitlines()[:3] == ["from pathlib import Path", "", "import numpy as np"]
    assert "torch" not in out and "PurePath" not in out


GOLDEN_TRAIN = sorted((REPO / "tests" / "golden").glob("*/train.py"))


@pytest.mark.parametrize("path", GOLDEN_TRAIN, ids=lambda p: p.parent.name)
def test_config_holds_only_keys_train_py_reads(path: Path):
    tree = ast.parse(path.read_text())
    (config,) = [
        node.value
        for node in tree.body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "CONFIG"
    ]
    keys = {k.value for k in config.keys}
    read = {
        node.slice.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Subscript)
        and getattr(node.value, "id", None) == "CONFIG"
        and isinstance(node.slice, ast.Constant)
    }
    read |= set(re.findall(r"CONFIG\['(\w+)'\]", path.read_text()))  # inside f-strings
    assert keys == read, (keys - read, read - keys)
