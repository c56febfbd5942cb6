"""GANs: the losses against their formulas, alternating updates with separate optimizers, the
located errors, and dcgan_digits judged by statistics of its samples against the real digits."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import SPECS, errors_of, run_specc
from PIL import Image

import specc.runtime as sr
from specc.compiler import codegen, data
from specc.compiler import export as ex
from specc.compiler.pipeline import compile_file

GAN = """\
specc: 1
name: g
task: gan
inputs: {{x: {{shape: [6]}}}}
{latent}generator:
  - {{type: linear, out_features: {gen_out}}}
  - sigmoid
discriminator:
  - {{type: linear, out_features: 8}}
  - leaky_relu
  - {{type: linear, out_features: {disc_out}}}
data: {{type: npz, path: d.npz}}
train: {{batch_size: 16, gan: {{d_steps: 2, label_smoothing: 0.1{loss}}}}}
"""


def gan_spec(write_spec, latent="latent: {dim: 3}\n", gen_out=6, disc_out=1, loss=""):
    return write_spec(GAN.format(latent=latent, gen_out=gen_out, disc_out=disc_out, loss=loss))


def test_gan_losses_follow_their_formulas(write_spec, tmp_path):
    for loss in ("non_saturating", "minimax"):
        compiled = compile_file(gan_spec(write_spec, loss=f", loss: {loss}"))
        codegen.write(compiled, tmp_path / loss)
        train = ex.load_generated(tmp_path / loss, "train.py")
        real, fake = torch.randn(5, 1), torch.randn(5, 1)
        d = torch.sigmoid
        want_d = -(0.9 * torch.log(d(real)) + 0.1 * torch.log(1 - d(real))) - torch.log(1 - d(fake))
        torch.testing.assert_close(train.discriminator_loss(real, fake), want_d.flatten())
        want_g = -torch.log(d(fake)) if loss == "non_saturating" else torch.log(1 - d(fake))
        torch.testing.assert_close(train.generator_loss(fake), want_g.flatten())


def test_the_networks_take_turns_with_their_own_optimizers(write_spec, tmp_path):
    np.savez(
        tmp_path / "d.npz",
        x=np.random.default_rng(0).random((32, 6)).astype(np.float32),
        y=np.zeros(32),
    )
    compiled = compile_file(gan_spec(write_spec))
    folder = tmp_path / "gen"
    codegen.write(compiled, folder)
    data.save(data.prepare(compiled), folder / "data.npz")
    train = ex.load_generated(folder, "train.py")
    (x,), y = train.load_data(folder / "data.npz")
    args = type("A", (), {"out": folder, "resume": False, "quiet": True, "epochs": None})()
    split = ((torch.from_numpy(x),), torch.from_numpy(y))
    trainer = train.Trainer(args, {"train": split, "val": split}, torch.device("cpu"), 0, 1)
    model = trainer.model
    g_params, d_params = model.generator_parameters(), model.discriminator_parameters()
    assert {id(p) for p in g_params}.isdisjoint(id(p) for p in d_params)
    assert len(g_params) + len(d_params) == len(list(model.parameters()))
    before = [p.detach().clone() for p in model.parameters()]
    trainer.train_epoch(train.Progress(quiet=True), None, {"stop": None})
    assert all(not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))
    # 2 batches of 16: the discriminator stepped twice per batch, the generator once
    d_optimizer = trainer.optimizers["d_optimizer"]
    assert {int(d_optimizer.state[p]["step"]) for p in d_params} == {4}
    assert {int(trainer.optimizer.state[p]["step"]) for p in g_params} == {2}
    assert "d_optimizer" in trainer.state_dict()
    row, _ = trainer.end_epoch(1.0)
    assert {"train_d_loss", "train_g_loss", "val_d_real", "val_d_fake"} <= set(row)
    assert row["train_loss"] == pytest.approx(row["train_g_loss"])


@pytest.mark.parametrize(
    "kw,line,message",
    [
        ({"latent": ""}, None, "a GAN needs the size of its generator's input: latent: {dim: N}"),
        ({"gen_out": 5}, 8, "the generator makes (5,), but input 'x' is (6,)"),
        ({"disc_out": 2}, 12, "the discriminator must end in one logit"),
    ],
)
def test_gan_mistakes_are_located(write_spec, kw, line, message):
    (e,) = errors_of(run_specc("check", gan_spec(write_spec, **kw)))
    assert message in e["msg"], e
    if line:
        assert e["line"] == str(line)


def test_dcgan_digits_generates_digit_like_samples(tmp_path):
    """Judged against the real digits: the samples' mean image and per-pixel spread match
    theirs (an untrained generator's do not), and a classifier of real digits finds most of
    the ten classes among them (no collapse onto a few)."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    out = tmp_path / "run"
    proc = run_specc("train", SPECS / "dcgan_digits.yaml", "-o", out, "--quiet")
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(r) for r in (out / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in rows if r["kind"] == "epoch"]
    assert len(epochs) == 60 and all(np.isfinite(r["train_d_loss"]) for r in epochs)
    digits = load_digits()
    real = digits.images.reshape(-1, 64) / 16.0
    fake = sr.Generator(out).sample(500, seed=0).reshape(500, 64)
    assert np.corrcoef(fake.mean(0), real.mean(0))[0, 1] > 0.9
    assert np.corrcoef(fake.std(0), real.std(0))[0, 1] > 0.8
    assert 0.5 < fake.std(0).mean() / real.std(0).mean() < 1.5
    untrained = ex.instantiate(out)
    with torch.no_grad():
        baseline = untrained(torch.randn(500, 16)).reshape(500, 64).numpy()
    assert np.corrcoef(baseline.mean(0), real.mean(0))[0, 1] < 0.5
    classes = LogisticRegression(max_iter=3000).fit(real, digits.target).predict(fake)
    counts = np.bincount(classes, minlength=10)
    assert (counts > 0).sum() >= 8 and counts.max() < 0.4 * len(classes)
    proc = run_specc("sample", out, "-n", "16", "-o", tmp_path / "grid.png")
    assert proc.returncode == 0, proc.stderr
    for p in [tmp_path / "grid.png", *sorted((out / "samples").glob("*.png"))]:
        assert np.asarray(Image.open(p).convert("L"), dtype=float).std() > 10, p
    assert (out / "samples" / "epoch_060.png").is_file()
