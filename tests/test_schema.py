"""`specc schema` under a real JSON Schema validator (jsonschema, not ours): every example spec
validates, and broken specs are rejected, each one also refused by `specc check` (the oracle that
it is broken)."""

from __future__ import annotations

import json

import jsonschema
import pytest
from helpers import SPECS, run_specc

from specc.compiler.layers import LAYERS
from specc.compiler.load import load_file, load_text


@pytest.fixture(scope="module")
def validator():
    proc = run_specc("schema")
    assert proc.returncode == 0, proc.stderr
    schema = json.loads(proc.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)  # the schema itself is well formed
    return jsonschema.Draft202012Validator(schema)


EXAMPLES = sorted(p for p in SPECS.glob("*.*") if p.suffix in (".yaml", ".yml", ".toml"))


def test_there_are_examples():
    assert len(EXAMPLES) >= 20


@pytest.mark.parametrize("spec", EXAMPLES, ids=lambda p: p.name)
def test_every_example_validates(validator, spec):
    errors = [
        f"{list(e.absolute_path)}: {e.message[:200]}"
        for e in validator.iter_errors(load_file(spec).data)
    ]
    assert errors == []


LENET = (SPECS / "lenet5.yaml").read_text(encoding="utf-8")
RESNET = (SPECS / "resnet_tiny.yaml").read_text(encoding="utf-8")
VAE = (SPECS / "vae_digits.yaml").read_text(encoding="utf-8")
GAN = (SPECS / "dcgan_digits.yaml").read_text(encoding="utf-8")
CONV1 = "{type: conv2d, out_channels: 20, kernel_size: 5, padding: 2}"


def _edit(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


BROKEN = {
    "typo key in a layer": _edit(
        LENET, "{type: linear, out_features: 10}", "{type: linear, out_features: 10, bais: false}"
    ),
    "typo key in a block body": _edit(RESNET, "bias: false}", "bais: false}"),
    "typo key in an encoder layer": _edit(
        VAE, "{type: linear, out_features: 128}", "{type: linear, out_feature: 128}"
    ),
    "a word for a number": _edit(LENET, "out_features: 10}", 'out_features: "ten"}'),
    "a word for a kernel size": _edit(LENET, "kernel_size: 5, padding: 2}", "kernel_size: five}"),
    "a three-item kernel size": _edit(LENET, CONV1, CONV1.replace("5", "[5, 5, 5]")),
    "an unknown padding word": _edit(LENET, "padding: 2}", "padding: full}"),
    "a word for a block parameter outside a block": _edit(
        LENET, "out_features: 500}", "out_features: $width}"
    ),
    "an unknown layer type": _edit(LENET, "{type: linear, out_features: 500}", "{type: lineer}"),
    "an unknown bare layer": _edit(LENET, "  - flatten", "  - flaten"),
    "a bare layer that needs settings": _edit(LENET, "  - flatten", "  - linear"),
    "from: a number": _edit(RESNET, "from: input,", "from: 3,"),
    "an unknown data set": _edit(VAE, "data: digits", "data: digitz"),
    "an unknown loss word": _edit(VAE, "loss: binary_cross_entropy", "loss: cross_entropi"),
    "an unknown optimizer word": _edit(VAE, "{type: adam, lr: 0.003}", "adamm"),
    "a schedule that needs settings as a word": _edit(
        LENET, "  epochs: 8", "  epochs: 8\n  schedule: step"
    ),
    "epochs as text": _edit(LENET, "epochs: 8", "epochs: eight"),
    "an unknown top-level key": LENET + "modle: []\n",
    "an encoder in a classifier": LENET + "encoder: [relu]\n",
    "model: in an autoencoder": VAE + "model: [relu]\n",
    "an autoencoder without a decoder": VAE[: VAE.index("decoder:")] + VAE[VAE.index("data:") :],
    "a GAN with model:": GAN + "model: [relu]\n",
    "a classifier with generator:": LENET + "generator: [relu]\n",
    "an unknown task": _edit(LENET, "task: classification", "task: clasification"),
}


@pytest.mark.parametrize("name", BROKEN)
def test_broken_specs_are_rejected(validator, name, tmp_path):
    text = BROKEN[name]
    errors = list(validator.iter_errors(load_text(text).data))
    assert errors, f"the schema accepts: {name}"
    spec = tmp_path / "broken.yaml"
    spec.write_text(text, encoding="utf-8")
    proc = run_specc("check", spec)
    assert proc.returncode == 1, f"specc check accepts: {name}"


def test_schema_keeps_the_shorthands_and_a_real_discriminator():
    proc = run_specc("schema")
    schema = json.loads(proc.stdout)
    text = json.dumps(schema)
    assert '"discriminator"' in text and '"propertyName": "type"' in text
    for kind in LAYERS:
        assert f'"const": "{kind}"' in text, kind
    # written forms a validator must accept, checked one at a time on the smallest spec
    base = "specc: 1\nname: t\ntask: classification\ninputs: {x: {shape: [2]}}\n"
    validator = jsonschema.Draft202012Validator(schema)
    for body in (
        "model: [relu]",
        "model: [{type: linear, out_features: 2, from: x}]",
        "model: [{type: conv1d, out_channels: 2, kernel_size: [3]}]",
        "model: [{type: maxpool2d, kernel_size: 2}]",
        "model: [{type: maxpool2d, kernel_size: [2, 3]}]",
        "model: [relu]\ndata: iris",
        "model: [relu]\ntrain: {optimizer: sgd, loss: mse, schedule: cosine, on_nan: rollback}",
    ):
        errors = list(validator.iter_errors(load_text(base + body).data))
        assert not errors, (body, [e.message for e in errors])
