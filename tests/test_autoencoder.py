"""Autoencoders and the VAE latent: the classic 8-3-8 encoder, the KL term and the
reparameterisation against their formulas, denoising, the exported halves, the runtime's
encode/decode/sample/interpolate, the pictures, and the located errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import SPECS, errors_of, run_specc
from PIL import Image

import specc.runtime as sr
from specc.compiler import codegen
from specc.compiler import export as ex
from specc.compiler.pipeline import compile_file

AE = """\
specc: 1
name: ae
task: autoencoder
inputs: {{x: {{shape: [6]}}}}
encoder:
  - {{type: linear, out_features: 4}}
  - tanh
{latent}decoder:
  - {{type: linear, out_features: {out}}}
  - sigmoid
{extra}"""


def ae_spec(write_spec, latent="", out=6, extra=""):
    return write_spec(AE.format(latent=latent, out=out, extra=extra))


def generated(write_spec, tmp_path, **kw):
    compiled = compile_file(ae_spec(write_spec, **kw))
    codegen.write(compiled, tmp_path / "gen")
    torch.manual_seed(0)
    return (
        compiled,
        ex.instantiate(tmp_path / "gen"),
        ex.load_generated(tmp_path / "gen", "train.py"),
    )


def test_the_8_3_8_encoder_invents_a_code(tmp_path):
    out = tmp_path / "run"
    proc = run_specc("train", SPECS / "autoencoder_838.yaml", "-o", out, "--quiet")
    assert proc.returncode == 0, proc.stderr
    ae = sr.Autoencoder(out)
    patterns = np.eye(8, dtype=np.float32)
    assert list(ae.reconstruct(patterns).argmax(axis=1)) == list(range(8))
    codes = ae.encode(patterns)
    assert codes.shape == (8, 3) and len({tuple(c) for c in codes.round(1)}) == 8
    proc = run_specc("encode", out)
    rows = [line.split("\t") for line in proc.stdout.strip().splitlines()]
    assert proc.returncode == 0 and len(rows) == 8
    np.testing.assert_allclose([[float(v) for v in r[1].split()] for r in rows], codes, atol=1e-4)


def test_kl_and_loss_follow_the_formulas(write_spec, tmp_path):
    """Oracle: torch.distributions' closed-form KL and a hand-written negative ELBO."""
    _, _, train = generated(
        write_spec,
        tmp_path,
        latent="latent: {type: gaussian, dim: 3, beta: 0.5}\n",
        extra="train: {loss: binary_cross_entropy}\n",
    )
    torch.manual_seed(1)
    mean, log_var = torch.randn(5, 3), torch.randn(5, 3)
    q = torch.distributions.Normal(mean, torch.exp(0.5 * log_var))
    p = torch.distributions.Normal(torch.zeros(3), torch.ones(3))
    want = torch.distributions.kl_divergence(q, p).sum(dim=1)
    torch.testing.assert_close(train.kl_divergence(mean, log_var), want)
    out, target = torch.rand(5, 6), torch.rand(5, 6)
    bce = torch.nn.functional.binary_cross_entropy(out, target, reduction="none").sum(dim=1)
    torch.testing.assert_close(
        train.loss_fn(out, target, mean, log_var), (bce + 0.5 * want).mean(), rtol=1e-5, atol=1e-6
    )
    sums = train.metric_sums(out, mean, log_var, target)
    assert float(sums["elbo"]) == pytest.approx(float(-(bce + want).sum()), rel=1e-5)


def test_the_latent_samples_in_training_and_gives_the_mean_in_eval(write_spec, tmp_path):
    _, model, _ = generated(write_spec, tmp_path, latent="latent: {type: gaussian, dim: 2}\n")
    x = torch.rand(1, 6).repeat(20000, 1)
    with torch.no_grad():
        mean, log_var = model.encode(x[:1])
        model.train()
        _, drawn_mean, drawn_log_var = model(x, latent=True)
        z = model.latent(torch.tanh(model.linear_1(x)))[0]
        model.eval()
        torch.testing.assert_close(model(x[:1]), model.decode(mean))
    torch.testing.assert_close(drawn_mean[:1], mean)
    torch.testing.assert_close(z.mean(dim=0), mean[0], atol=0.03, rtol=0)
    torch.testing.assert_close(z.std(dim=0), torch.exp(0.5 * log_var[0]), atol=0.03, rtol=0.02)


@pytest.mark.parametrize("noise", ["{type: masking, p: 0.3}", "{type: gaussian, std: 0.2}"])
def test_denoising_corrupts_training_inputs_only(write_spec, tmp_path, noise):
    _, _, train = generated(write_spec, tmp_path, extra=f"noise: {noise}\n")
    x = torch.ones(1000, 6)
    torch.manual_seed(0)
    y = train.corrupt(x)
    if "masking" in noise:
        assert set(y.unique().tolist()) == {0.0, 1.0}
        assert float((y == 0).float().mean()) == pytest.approx(0.3, abs=0.02)
    else:
        assert float((y - x).std()) == pytest.approx(0.2, abs=0.01)
    assert (
        "corrupt("
        not in (tmp_path / "gen" / "train.py")
        .read_text()
        .split("def evaluate")[1]
        .split("def make_optimizer")[0]
    )


def test_vae_digits_trains_exports_its_halves_and_draws(tmp_path):
    out = tmp_path / "run"
    proc = run_specc("train", SPECS / "vae_digits.yaml", "-o", out, "--quiet")
    assert proc.returncode == 0, proc.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["metrics"]["val_elbo"] >= -28.0
    for part in ("encoder", "decoder"):
        runs = report["parts"][part]["runs"]
        assert [r["batch"] for r in runs] == [1, 256]
        assert max(r["max_abs_diff"] for r in runs) < 1e-5
    proc = run_specc("evaluate", out, "--json")
    assert proc.returncode == 0, (
        proc.stderr
    )  # the reconstruction through model.onnx (the mean code)
    assert json.loads(proc.stdout)["metrics"]["mse"] == pytest.approx(
        report["metrics"]["val_mse"], rel=1e-4
    )
    ae = sr.Autoencoder(out)
    assert ae.variational and ae.dim == 2
    a = ae.sample(16, seed=3)
    assert a.shape == (16, 1, 8, 8) and np.array_equal(a, ae.sample(16, seed=3))
    assert not np.array_equal(a, ae.sample(16, seed=4))
    with np.load(out / "data.npz") as f:
        x = f["x"][:2]
    path = ae.interpolate(x[0], x[1], steps=5)
    np.testing.assert_allclose(path[0], ae.reconstruct(x[:1])[0], atol=1e-5)
    np.testing.assert_allclose(path[-1], ae.reconstruct(x[1:2])[0], atol=1e-5)
    pictures = [out / "latent.png", *sorted((out / "samples").glob("epoch_*.png"))]
    assert len(pictures) >= 2 and (out / "samples" / "epoch_030.png").is_file()
    proc = run_specc(
        "sample", out, "-n", "64", "-o", tmp_path / "grid.png", "--seed", "0", "--scale", "4"
    )
    assert proc.returncode == 0, proc.stderr
    for p in [*pictures, tmp_path / "grid.png"]:
        image = np.asarray(Image.open(p).convert("L"), dtype=np.float64)
        assert min(image.shape) >= 64 and image.std() > 10, p  # drawn, not blank or constant
    assert Image.open(tmp_path / "grid.png").size == (4 * (8 * 9 + 1),) * 2  # 8x8 tiles, gaps, x4


def test_conv_vae_digits_trains(tmp_path):
    out = tmp_path / "run"
    proc = run_specc("train", SPECS / "conv_vae_digits.yaml", "-o", out, "--quiet")
    assert proc.returncode == 0, proc.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["metrics"]["val_elbo"] >= -28.0 and report["parity"]["ok"]
    assert sr.Autoencoder(out).sample(4, seed=0).shape == (4, 1, 8, 8)


def test_generative_mistakes_are_located(write_spec):
    (e,) = errors_of(run_specc("check", ae_spec(write_spec, out=5)))
    assert (
        e["line"] == "10"
        and "the decoder gives (5,), but it must rebuild the input's shape (6,)" in e["msg"]
    )
    (e,) = errors_of(
        run_specc(
            "check", ae_spec(write_spec, latent="latent: {type: gaussian, dim: 2, beta: -1}\n")
        )
    )
    assert e["line"] == "8" and "beta" in e["msg"] and "greater than or equal to 0" in e["msg"]
    path = write_spec(
        "specc: 1\nname: c\ntask: classification\ninputs: {x: {shape: [4]}}\n"
        "latent: {type: gaussian, dim: 2}\nmodel:\n  - {type: linear, out_features: 2}\n"
    )
    (e,) = errors_of(run_specc("check", path))
    assert e["line"] == "5" and "latent: belongs to task: autoencoder or task: gan" in e["msg"]
    path = write_spec(
        "specc: 1\nname: c\ntask: autoencoder\ninputs: {x: {shape: [4]}}\n"
        "encoder:\n  - {type: linear, out_features: 2}\n"
    )
    (e,) = errors_of(run_specc("check", path))
    assert "task: autoencoder needs a 'decoder:' list of layers" in e["msg"]


def test_sampling_a_classifier_or_a_plain_autoencoder_is_refused(tmp_path, write_spec):
    out = tmp_path / "xor"
    assert run_specc("train", SPECS / "xor.yaml", "-o", out, "--quiet").returncode == 0
    proc = run_specc("sample", out, "-n", "4")
    assert (
        proc.returncode == 1 and "classification model, which has nothing to sample" in proc.stderr
    )
    assert "Traceback" not in proc.stderr
    path = ae_spec(
        write_spec, extra="data: {type: builtin, name: xor}\ntrain: {epochs: 1}\n"
    ).parent
    spec = path / "spec.yaml"
    spec.write_text(
        spec.read_text().replace("[6]", "[2]").replace("out_features: 6", "out_features: 2")
    )
    run = tmp_path / "ae"
    assert run_specc("train", spec, "-o", run, "--quiet").returncode == 0
    proc = run_specc("sample", run, "-n", "4")
    assert proc.returncode == 1 and "sampling needs a VAE latent" in proc.stderr
