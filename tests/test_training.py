"""The generated training loop against independent oracles: hand-written torch loops, textbook
formulas for schedules and losses, and PyTorch's own optimizers."""

from __future__ import annotations

import ast
import json
import math
import os
import pty
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from specc.compiler import codegen, data
from specc.compiler import export as ex
from specc.compiler.pipeline import compile_file

MLP = """\
specc: 1
name: t
task: {task}
inputs: {{x: {{shape: [8]}}}}
model:
  - {{type: linear, out_features: 16}}
  - tanh
  - {{type: linear, out_features: {out}}}{tail}
data: {{type: npz, path: d.npz, val_split: {val}}}
train:
{train}
"""


def make_data(folder: Path, n=256, task="classification", seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8)).astype(np.float32)
    if task == "classification":
        y = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0.5).astype(int)
    else:
        y = (x @ rng.normal(size=8)).astype(np.float32)
    np.savez(folder / "d.npz", x=x, y=y)


def generate(tmp_path: Path, train: str, task="classification", out=3, val=0.25, n=256, tail=""):
    """Spec + data -> generated folder (model.py, train.py, data.npz) and its train.py module."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    make_data(tmp_path, n, task)
    train = "\n".join("  " + line for line in train.strip().splitlines())
    spec = tmp_path / "s.yaml"
    spec.write_text(MLP.format(task=task, out=out, val=val, train=train, tail=tail))
    compiled = compile_file(spec)
    folder = tmp_path / "gen"
    codegen.write(compiled, folder)
    data.save(data.prepare(compiled), folder / "data.npz")
    return ex.load_generated(folder, "train.py"), folder


def trainer_of(mod, folder: Path):
    xs, y = mod.load_data(folder / "data.npz")
    splits = mod.split_indices(len(y), mod.CONFIG["seed"])
    tensors = {
        k: (tuple(torch.from_numpy(x[i]) for x in xs), torch.from_numpy(y[i]))
        for k, i in splits.items()
    }
    args = SimpleNamespace(out=folder, resume=False, quiet=True, epochs=None, device="cpu")
    torch.manual_seed(mod.CONFIG["seed"])
    return mod.Trainer(args, tensors, torch.device("cpu"), 0, 1)


def one_epoch(trainer, mod):
    trainer.train_epoch(mod.Progress(quiet=True), None, {"stop": None})


# ----------------------------------------------------------------------------- optimizers


@pytest.mark.parametrize(
    "text,cls,expect",
    [
        (
            "{type: sgd, lr: 0.05, momentum: 0.9, nesterov: true, weight_decay: 0.001}",
            torch.optim.SGD,
            {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.001},
        ),
        ("{type: adam}", torch.optim.Adam, {"lr": 1e-3, "betas": (0.9, 0.999), "weight_decay": 0}),
        ("{type: adamw}", torch.optim.AdamW, {"lr": 1e-3, "weight_decay": 0.01}),
        (
            "{type: rmsprop, lr: 0.002, alpha: 0.9, momentum: 0.5}",
            torch.optim.RMSprop,
            {"lr": 0.002, "alpha": 0.9, "momentum": 0.5},
        ),
        ("sgd", torch.optim.SGD, {"lr": 0.01, "momentum": 0.0, "nesterov": False}),
    ],
)
def test_optimizer_is_the_torch_optimizer_the_spec_names(tmp_path, text, cls, expect):
    mod, _ = generate(tmp_path, f"optimizer: {text}")
    opt = mod.make_optimizer(mod.Model().parameters())
    assert type(opt) is cls
    group = opt.param_groups[0]
    for k, v in expect.items():
        assert group[k] == (tuple(v) if isinstance(v, tuple) else v), k


def test_an_epoch_is_exactly_a_hand_written_sgd_loop(tmp_path):
    """Same init, same batches (order seeded by seed and epoch), same update: identical weights."""
    mod, folder = generate(
        tmp_path,
        "optimizer: {type: sgd, lr: 0.1, momentum: 0.9, nesterov: true, weight_decay: 0.01}\nbatch_size: 20",
    )
    trainer = trainer_of(mod, folder)
    (x,), y = trainer.data["train"]
    torch.manual_seed(mod.CONFIG["seed"])
    model = mod.Model()
    opt = torch.optim.SGD(
        model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01
    )
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0 * 1_000_003 + 1))
    for idx in order.split(20):
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    one_epoch(trainer, mod)
    for (name, a), b in zip(
        trainer.model.state_dict().items(), model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    # the running train loss is the mean of the batch losses weighted by batch size
    assert trainer.seen == len(x)


# ----------------------------------------------------------------------------- schedules


def lr_trace(mod, steps_per_epoch: int) -> list[float]:
    opt = mod.make_optimizer(mod.Model().parameters())
    schedule, _ = mod.make_schedule(opt, steps_per_epoch)
    trace = []
    for _ in range(mod.CONFIG["epochs"] * steps_per_epoch):
        trace.append(opt.param_groups[0]["lr"])
        opt.step()
        schedule.step()
    return trace


def _cos(t, total, hi, lo):
    return lo + (hi - lo) * (1 + math.cos(math.pi * t / total)) / 2


SCHEDULES = {
    "{type: step, step_epochs: 2, gamma: 0.5}": lambda t: 0.1 * 0.5 ** (t // 20),
    "{type: multistep, milestones: [2, 5], gamma: 0.1}": lambda t: (
        0.1 * 0.1 ** ((t >= 20) + (t >= 50))
    ),
    "{type: exponential, gamma: 0.8}": lambda t: 0.1 * 0.8 ** (t / 10),
    "{type: cosine, min_lr: 0.001}": lambda t: _cos(t, 60, 0.1, 0.001),
    "{type: cosine, warmup_epochs: 1, warmup_start_factor: 0.1}": lambda t: (
        0.1 * (0.1 + 0.9 * t / 10) if t <= 10 else _cos(t - 10, 50, 0.1, 0.0)
    ),
    "{type: step, step_epochs: 2, gamma: 0.5, warmup_epochs: 0.5}": lambda t: (
        0.1 * (0.01 + 0.99 * t / 5) if t <= 5 else 0.1 * 0.5 ** ((t - 5) // 20)
    ),
}


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_schedule_follows_its_formula(tmp_path, schedule):
    mod, _ = generate(
        tmp_path, f"epochs: 6\noptimizer: {{type: sgd, lr: 0.1}}\nschedule: {schedule}"
    )
    trace = lr_trace(mod, steps_per_epoch=10)
    expected = [SCHEDULES[schedule](t) for t in range(60)]
    np.testing.assert_allclose(trace, expected, rtol=1e-6, atol=1e-12)


def test_one_cycle_rises_to_max_lr_then_anneals(tmp_path):
    mod, _ = generate(
        tmp_path,
        "epochs: 5\noptimizer: {type: sgd, lr: 0.01, momentum: 0.9}\nschedule: {type: one_cycle, max_lr: 0.2, pct_start: 0.25}",
    )
    trace = lr_trace(mod, steps_per_epoch=20)
    peak = int(np.argmax(trace))
    assert max(trace) == pytest.approx(0.2)
    assert abs(peak - 0.25 * 100) <= 1
    assert trace[0] == pytest.approx(0.2 / 25)  # torch's div_factor
    assert trace[-1] < trace[0] / 100
    assert all(a <= b for a, b in zip(trace[:peak], trace[1 : peak + 1]))


def test_plateau_lowers_the_lr_after_patience_epochs(tmp_path):
    mod, folder = generate(
        tmp_path,
        "optimizer: {type: sgd, lr: 0.1}\nschedule: {type: plateau, factor: 0.5, patience: 1}\nmonitor: val_loss",
    )
    trainer = trainer_of(mod, folder)
    lrs = []
    trainer.step = 1
    for value in (1.0, 0.9, 0.95, 0.97, 0.8, 0.85, 0.86):
        mod.evaluate = lambda *a, v=value, **k: {"loss": v, "accuracy": 0.5}
        trainer.sums, trainer.seen = {"loss": torch.tensor(1.0, dtype=torch.float64)}, 1
        trainer.end_epoch(1.0)
        lrs.append(trainer.lr())
    # improves, improves, worse (1 bad), worse (2 bad > patience 1: halve), improves, worse, worse: halve
    assert lrs == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025])


# ----------------------------------------------------------------------------- gradients


def _hand_gradient(mod, trainer, x, y):
    torch.manual_seed(mod.CONFIG["seed"])
    model = mod.Model()
    model.load_state_dict(trainer.model.state_dict())
    F.cross_entropy(model(x), y).backward()
    return [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("clip", ["clip_grad_norm: 0.05", "clip_grad_value: 0.002"])
def test_gradient_clipping(tmp_path, clip):
    mod, folder = generate(tmp_path, f"optimizer: {{type: sgd, lr: 1.0}}\nbatch_size: 192\n{clip}")
    trainer = trainer_of(mod, folder)
    (x,), y = trainer.data["train"]
    assert len(x) == 192  # one batch per epoch: one step
    before = [p.detach().clone() for p in trainer.model.parameters()]
    grads = _hand_gradient(mod, trainer, x, y)
    one_epoch(trainer, mod)
    updates = [b - p.detach() for b, p in zip(before, trainer.model.parameters(), strict=True)]
    if "norm" in clip:
        norm = torch.sqrt(sum(g.square().sum() for g in grads))
        assert norm > 0.05  # so the clip has something to do
        expected = [g * (0.05 / norm) for g in grads]
    else:
        assert max(g.abs().max() for g in grads) > 0.002
        expected = [g.clamp(-0.002, 0.002) for g in grads]
    for u, e in zip(updates, expected, strict=True):
        torch.testing.assert_close(u, e, rtol=1e-4, atol=1e-7)


def test_gradient_accumulation_equals_the_larger_batch(tmp_path):
    small, f1 = generate(
        tmp_path / "a", "optimizer: {type: sgd, lr: 0.2}\nbatch_size: 16\naccumulate_steps: 4"
    )
    large, f2 = generate(tmp_path / "b", "optimizer: {type: sgd, lr: 0.2}\nbatch_size: 64")
    a, b = trainer_of(small, f1), trainer_of(large, f2)
    assert len(a.data["train"][1]) == 192 and a.steps_per_epoch == b.steps_per_epoch == 3
    one_epoch(a, small)
    one_epoch(b, large)
    assert a.step == b.step == 3
    for p, q in zip(a.model.parameters(), b.model.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- losses, metrics


def test_label_smoothing_matches_the_formula_for_every_output_layer(tmp_path):
    logits = torch.randn(12, 3, dtype=torch.float64)
    y = torch.randint(0, 3, (12,))
    logp = logits.log_softmax(-1)
    expected = (-(0.8 * logp[torch.arange(12), y]) - 0.2 * logp.mean(-1)).mean()
    mod, _ = generate(tmp_path, "loss: {type: cross_entropy, label_smoothing: 0.2}")
    assert float(mod.loss_fn(logits, y)) == pytest.approx(float(expected), rel=1e-9)
    # the same model ending in softmax or log_softmax: its loss takes (log-)probabilities and agrees
    for tail, kind, out in (
        ("softmax", "probabilities", logits.softmax(-1)),
        ("log_softmax", "log_probabilities", logp),
    ):
        soft, folder = generate(
            tmp_path / tail,
            "loss: {type: cross_entropy, label_smoothing: 0.2}",
            tail=f"\n  - {tail}",
        )
        output = (folder / "model.py").read_text().split("OUTPUT = ", 1)[1].splitlines()[0]
        assert ast.literal_eval(output)["kind"] == kind
        assert float(soft.loss_fn(out, y)) == pytest.approx(float(expected), rel=1e-6)


def test_huber_loss_and_regression_metrics(tmp_path):
    mod, _ = generate(
        tmp_path, "loss: {type: huber, delta: 0.5}\nmetrics: [mse, mae]", task="regression", out=1
    )
    out = torch.tensor([[0.0], [1.0], [3.0]])
    y = torch.tensor([0.2, 1.0, 1.0])
    err = np.array([0.2, 0.0, 2.0])
    huber = np.where(err < 0.5, 0.5 * err**2, 0.5 * (err - 0.25)).mean()
    assert float(mod.loss_fn(out, y)) == pytest.approx(huber, rel=1e-6)
    sums = mod.metric_sums(out, y)
    assert float(sums["mse"]) == pytest.approx((err**2).sum(), rel=1e-6)
    assert float(sums["mae"]) == pytest.approx(err.sum(), rel=1e-6)


def test_top_k_accuracy(tmp_path):
    mod, _ = generate(tmp_path, "metrics: [accuracy, top2]", out=5)
    out = torch.tensor([[5.0, 4, 3, 2, 1], [1.0, 5, 4, 3, 2], [1.0, 2, 3, 4, 5]])
    y = torch.tensor([1, 1, 0])  # second best, best, worst
    sums = mod.metric_sums(out, y)
    assert float(sums["accuracy"]) == 1 and float(sums["top2"]) == 2


# ----------------------------------------------------------------------------- whole runs of train.py


def run_train_py(folder: Path, *args, tty=False) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(folder / "train.py"), "--out", str(folder), *map(str, args)]
    if not tty:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        cmd, stdout=follower, stderr=follower, env=dict(os.environ, COLUMNS="120")
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    proc.wait(timeout=300)
    os.close(leader)
    return subprocess.CompletedProcess(
        cmd, proc.returncode, b"".join(chunks).decode(errors="replace"), ""
    )


def test_early_stopping_ends_the_run_and_keeps_the_best_epoch(tmp_path):
    _, folder = generate(tmp_path, "epochs: 30\nearly_stopping: {patience: 2, min_delta: 100}")
    proc = run_train_py(folder)
    assert proc.returncode == 0, proc.stderr
    results = json.loads((folder / "results.json").read_text())
    assert results["stopped_early"] and results["epochs_run"] == 3 and results["best_epoch"] == 1
    assert "early stop after epoch 3" in proc.stdout
    assert results["weights"] == "checkpoints/best.pt"
    best = torch.load(folder / "checkpoints" / "best.pt", weights_only=True)
    assert best["position"]["epoch"] == 2  # saved right after epoch 1


def test_deterministic_mode_repeats_bitwise(tmp_path):
    _, folder = generate(tmp_path, "epochs: 2\ndeterministic: true\noptimizer: adam")
    assert run_train_py(folder, "--quiet").returncode == 0
    first = torch.load(folder / "checkpoints" / "last.pt", weights_only=True)
    assert run_train_py(folder, "--quiet").returncode == 0
    second = torch.load(folder / "checkpoints" / "last.pt", weights_only=True)
    for k, v in first["model"].items():
        assert torch.equal(v, second["model"][k]), k


DIVERGING = "epochs: 6\nbatch_size: 16\noptimizer: {type: sgd, lr: 200}\nlog_every_steps: 0\n"


def test_nan_loss_stops_with_the_step_and_keeps_a_good_checkpoint(tmp_path):
    _, folder = generate(tmp_path, DIVERGING, task="regression", out=1, val=0.0, n=160)
    proc = run_train_py(folder, "--quiet")
    assert proc.returncode == 4, proc.stderr  # its own code: 2 is a usage error
    assert "error: loss became" in proc.stderr and "at epoch 1, step" in proc.stderr
    assert "on_nan: rollback" in proc.stderr and "Traceback" not in proc.stderr
    last = torch.load(folder / "checkpoints" / "last.pt", weights_only=True)
    assert all(torch.isfinite(v).all() for v in last["model"].values())


def test_nan_loss_rolls_back_with_a_lower_lr_and_finishes(tmp_path):
    _, folder = generate(
        tmp_path,
        DIVERGING + "on_nan: {action: rollback, lr_factor: 0.0005, retries: 2}",
        task="regression",
        out=1,
        val=0.0,
        n=160,
    )
    proc = run_train_py(folder)
    assert proc.returncode == 0, proc.stderr
    assert "rolled back to step 0 with learning rates x0.0005 (retry 1/2)" in proc.stdout
    results = json.loads((folder / "results.json").read_text())
    assert results["nan_rollbacks"] == 1 and results["epochs_run"] == 6
    assert results["metrics"]["train_loss"] < 0.05  # lr 0.1 then fits the linear target


def test_rollback_gives_up_after_its_retries(tmp_path):
    _, folder = generate(
        tmp_path,
        DIVERGING + "on_nan: {action: rollback, lr_factor: 0.9, retries: 2}",
        task="regression",
        out=1,
        val=0.0,
        n=160,
    )
    proc = run_train_py(folder, "--quiet")
    assert proc.returncode == 4 and "error: loss became" in proc.stderr


def test_bf16_autocast_trains_on_cpu_and_fp16_is_refused(tmp_path):
    _, folder = generate(tmp_path, "epochs: 20\nprecision: bf16\noptimizer: {type: adam, lr: 0.01}")
    proc = run_train_py(folder, "--quiet")
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in rows if r["kind"] == "epoch"]
    assert epochs[-1]["train_loss"] < 0.6 * epochs[0]["train_loss"]
    assert epochs[-1]["val_accuracy"] > 0.8
    _, folder16 = generate(tmp_path / "a", "precision: fp16")
    if torch.cuda.is_available():
        pytest.skip("fp16 runs on CUDA here; the CPU refusal is tested on CPU-only machines")
    proc = run_train_py(folder16, "--quiet")
    assert proc.returncode == 1 and "fp16 needs CUDA; use bf16 on CPU" in proc.stderr


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (none here)")
def test_fp16_with_loss_scaling_trains_on_cuda(tmp_path):
    _, folder = generate(
        tmp_path, "epochs: 5\nprecision: fp16\ndevice: cuda\noptimizer: {type: adam, lr: 0.01}"
    )
    proc = run_train_py(folder, "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((folder / "results.json").read_text())["metrics"]["val_accuracy"] > 0.8


def test_what_the_user_sees_on_a_terminal_in_a_log_and_quiet(tmp_path):
    _, folder = generate(tmp_path, "epochs: 2\nlog_every_steps: 3\ntensorboard: true")
    proc = run_train_py(folder, tty=True)
    assert proc.returncode == 0, proc.stdout
    assert "steps/s" in proc.stdout and "━" in proc.stdout  # rich's bar, with its rate column
    assert "epoch 2/2" in proc.stdout
    plain = run_train_py(folder)
    assert "steps/s" not in plain.stdout and "\x1b[" not in plain.stdout
    lines = [ln for ln in plain.stdout.splitlines() if ln.startswith("epoch ")]
    assert len(lines) == 2 and "val_accuracy" in lines[0]
    quiet = run_train_py(folder, "--quiet")
    assert "epoch" not in quiet.stdout
    try:
        import tensorboard  # noqa: F401

        assert list((folder / "tensorboard").glob("events.out.tfevents.*"))
    except ImportError:
        assert "tensorboard is not installed" in plain.stdout

    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    kinds = [r["kind"] for r in rows]
    assert kinds.count("epoch") == 2 and kinds.count("step") == 2 * 6 // 3  # 6 steps per epoch
    assert all(r["step"] % 3 == 0 for r in rows if r["kind"] == "step")
    from PIL import Image

    with Image.open(folder / "metrics.png") as img:
        assert img.format == "PNG" and img.width >= 600 and img.height >= 300
        pixels = np.asarray(img.convert("L"), dtype=np.float32)
    assert pixels.std() > 10  # curves and text, not a blank canvas


def test_dataloader_workers_feed_the_same_batches(tmp_path):
    """Worker processes gather the batches; the run is the same as gathering them in-process."""
    weights = []
    for workers in (0, 2):
        _, folder = generate(
            tmp_path / str(workers),
            f"epochs: 2\nworkers: {workers}\ndeterministic: true\noptimizer: adam",
        )
        proc = run_train_py(folder, "--quiet")
        assert proc.returncode == 0, proc.stderr
        weights.append(torch.load(folder / "checkpoints" / "last.pt", weights_only=True)["model"])
    for k, v in weights[0].items():
        assert torch.equal(v, weights[1][k]), k
