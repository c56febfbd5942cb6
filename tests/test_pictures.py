"""The pictures specc draws: `specc graph` (boxes that fit their text, framed sections, colours
with a legend, edges inside the canvas, the same bytes every time), metrics.png's panels, and
the per-epoch sample sheets (how many, their names, their row labels)."""

from __future__ import annotations

import html
import re
from pathlib import Path

import numpy as np
import pytest
from helpers import SPECS, run_specc
from PIL import Image

from specc.compiler.graph import KINDS
from specc.compiler.train.images import MAX_SAMPLE_SHEETS, sample_sheet, text_pixels, write_grid
from specc.compiler.train.progress import panels

NUMBER = r"-?\d+(?:\.\d+)?(?:e-?\d+)?"


def _svg(tmp_path, spec: str, name="g.svg") -> str:
    out = tmp_path / name
    proc = run_specc("graph", SPECS / spec, "-o", out)
    assert proc.returncode == 0, proc.stderr
    return out.read_text(encoding="utf-8")


def _groups(svg: str, prefix: str) -> dict[str, str]:
    """id -> the SVG text of the <g id="prefix..."> group."""
    found = {}
    for m in re.finditer(rf'<g id="({prefix}[^"]*)">(.*?)</g>', svg, re.S):
        found[html.unescape(m.group(1))] = m.group(2)
    return found


def _xs_ys(fragment: str) -> tuple[list[float], list[float]]:
    values = []
    for d in re.findall(r' d="([^"]+)"', fragment):
        values += [float(v) for v in re.findall(NUMBER, d)]
    return values[0::2], values[1::2]


def test_graph_svg_is_reproducible_and_undated(tmp_path):
    a = _svg(tmp_path, "transformer_copy_sort.yaml", "a.svg")
    b = _svg(tmp_path, "transformer_copy_sort.yaml", "b.svg")
    assert a == b
    assert "<dc:date>" not in a


@pytest.mark.parametrize(
    "spec,sections",
    [
        ("dcgan_digits.yaml", {"generator", "discriminator"}),
        ("transformer_copy_sort.yaml", {"encoder", "decoder"}),
        ("lenet5.yaml", set()),  # one section: nothing to frame
    ],
)
def test_graph_frames_sections_and_keeps_edges_inside(tmp_path, spec, sections):
    svg = _svg(tmp_path, spec)
    assert set(g.split(":", 1)[1] for g in _groups(svg, "section:")) == sections
    for section in sections:
        assert f">{section}<" in svg  # each frame is named
    width, height = (float(v) for v in re.search(r'viewBox="0 0 ([\d.]+) ([\d.]+)"', svg).groups())
    edges = _groups(svg, "edge:")
    assert edges
    for name, fragment in edges.items():
        xs, ys = _xs_ys(fragment)
        assert 0 <= min(xs) and max(xs) <= width and 0 <= min(ys) and max(ys) <= height, name


def test_graph_boxes_fit_their_text_and_colours_have_a_legend(tmp_path):
    """Each box is wider than its text as matplotlib's renderer measures it (the graph measures
    with text paths; the renderer is the oracle)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    svg = _svg(tmp_path, "transformer_copy_sort.yaml")
    nodes = _groups(svg, "node:")
    fig = plt.figure(dpi=300)  # fine enough that hinting does not round the glyphs' advances
    renderer = fig.canvas.get_renderer()
    longest = "transformer_decoder_layer_1  (transformer_decoder_layer)"
    assert html.escape(longest, quote=False) in svg
    text = fig.text(0, 0, longest, fontsize=8.5)
    needed = text.get_window_extent(renderer).width * 72 / 300  # points
    plt.close(fig)
    for name, fragment in nodes.items():
        xs, _ = _xs_ys(fragment)
        assert max(xs) - min(xs) > needed + 8, name  # with a margin on both sides
    fills = set(re.findall(r"fill: (#[0-9a-f]{6})", svg))
    for kind in ("input", "attention", "embedding", "linear"):
        assert KINDS[kind][0] in fills and f">{KINDS[kind][1]}<" in html.unescape(svg), kind
    assert ">convolution<" not in svg  # the legend lists the kinds drawn, only


def test_metrics_panels_drop_a_repeated_curve():
    rows = [
        {
            "epoch": e,
            "train_loss": 1.0 / e,
            "val_loss": 2.0 / e,
            "train_g_loss": 1.0 / e + 1e-12,  # summed in another order
            "val_g_loss": 2.0 / e,
            "train_d_loss": 0.5,
            "val_d_loss": 0.6,
        }
        for e in (1, 2, 3)
    ]
    names, titles = panels(rows)
    assert names == ["loss", "d_loss"] and titles["loss"] == "loss = g_loss"
    rows[1]["val_g_loss"] = 0.7  # differs somewhere: its own panel
    assert panels(rows)[0] == ["loss", "g_loss", "d_loss"]


def test_metrics_panels_draw_a_negated_curve_once():
    """A VAE reports elbo = -loss: one panel, titled with both."""
    rows = [
        {
            "epoch": e,
            "train_loss": 30 / e,
            "val_loss": 29 / e,
            "train_elbo": -30 / e,
            "val_elbo": -29 / e,
            "train_kl": 0.5,
            "val_kl": 0.4,
        }
        for e in (1, 2)
    ]
    names, titles = panels(rows)
    assert names == ["loss", "kl"] and titles["loss"] == "loss = -elbo"
    rows[0]["val_elbo"] = -28.0  # no longer the loss negated: its own panel
    assert panels(rows)[0] == ["loss", "elbo", "kl"]


def test_sample_sheets_are_capped_and_sort_in_epoch_order():
    out = Path("run")
    drawn = [e for e in range(1, 1501) if sample_sheet(out, e, 1500)]
    assert len(drawn) == MAX_SAMPLE_SHEETS and drawn[0] == 1 and drawn[-1] == 1500
    names = [sample_sheet(out, e, 1500).name for e in drawn]
    assert names == sorted(names) and names[0] == "epoch_0001.png"
    assert [sample_sheet(out, e, 30).name for e in (1, 30)] == ["epoch_001.png", "epoch_030.png"]
    assert all(sample_sheet(out, e, 30) for e in range(1, 31))  # short runs: every epoch


def test_sample_sheet_rows_are_labelled(tmp_path):
    rng = np.random.default_rng(0)
    rows = [rng.random((10, 8, 8)) * 0.5 + 0.25 for _ in range(3)]  # tiles in mid-gray
    write_grid(rows, tmp_path / "plain.png", scale=1)
    write_grid(rows, tmp_path / "labelled.png", scale=1, labels=["input", "rebuilt", "prior"])
    plain = np.asarray(Image.open(tmp_path / "plain.png").convert("L"), dtype=float)
    labelled = np.asarray(Image.open(tmp_path / "labelled.png").convert("L"), dtype=float)
    extra = labelled.shape[1] - plain.shape[1]
    assert extra == text_pixels("rebuilt").shape[1] + 4 and labelled.shape[0] == plain.shape[0]
    np.testing.assert_array_equal(labelled[:, extra:], plain)  # the tiles are untouched
    column = labelled[:, :extra]
    for r, label in enumerate(["input", "rebuilt", "prior"]):  # each row's letters, in black
        band = column[1 + r * 9 : 1 + r * 9 + 8]
        ink = (band < 50).sum()
        assert ink == text_pixels(label).sum(), label
