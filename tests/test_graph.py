"""`specc graph`: every layer drawn with its shape and parameters, every `from:` an arrow."""

from __future__ import annotations

import html
import re

import numpy as np
from helpers import SPECS, run_specc
from PIL import Image

from specc.compiler.pipeline import compile_file


def test_svg_has_every_layer_and_every_connection(tmp_path):
    out = tmp_path / "resnet.svg"
    proc = run_specc("graph", SPECS / "resnet_tiny.yaml", "-o", out)
    assert proc.returncode == 0, proc.stderr
    svg = html.unescape(out.read_text())
    compiled = compile_file(SPECS / "resnet_tiny.yaml")
    layers = compiled.parsed.layers
    expected_edges = {(ref, layer.name) for layer in layers for ref in layer.from_ or []}
    drawn = set(re.findall(r'id="edge:([^"]+)->([^"]+)"', svg))
    assert drawn == expected_edges and len(drawn) == len(layers) + 4  # the 4 residual adds read two
    nodes = set(re.findall(r'id="node:([^"]+)"', svg))
    assert nodes == {layer.name for layer in layers} | {"image"}
    for layer in layers:
        assert f"{layer.name}  ({layer.type})" in svg
    assert "42,938 parameters" in svg and "(batch, 32, 8, 8)  ·  9,216 params" in svg


def test_png_is_a_picture_and_bad_names_are_refused(tmp_path):
    out = tmp_path / "lenet.png"
    assert run_specc("graph", SPECS / "lenet5.yaml", "-o", out).returncode == 0
    with Image.open(out) as img:
        assert img.format == "PNG" and img.height > img.width
        assert np.asarray(img.convert("L")).std() > 20
    proc = run_specc("graph", SPECS / "lenet5.yaml", "-o", tmp_path / "x.gif")
    assert proc.returncode == 1 and "use a .svg, .png or .pdf file name" in proc.stderr
