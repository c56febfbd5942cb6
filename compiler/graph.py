"""`specc graph`: a picture of the network for people who would rather look than read.

One box per input and layer, top to bottom in forward order, each with its name, type, output
shape and parameter count. Every `from:` reference is an arrow: the usual chain runs straight
down, skip connections and branches curve around the side. Written with matplotlib as SVG (text
kept as text, so names are searchable), PNG or PDF.
"""

from __future__ import annotations

from pathlib import Path

from .diagnostics import UserError
from .layers.base import fmt_shape
from .pipeline import Compiled

FORMATS = (".svg", ".png", ".pdf")
KIND_COLOURS = {
    "input": "#dbe9f6",
    "conv": "#fde2c8",
    "linear": "#d9f0d3",
    "norm": "#eadcf2",
    "pool": "#fff3bf",
    "merge": "#f8d7da",
}


def _colour(kind: str) -> str:
    if kind == "input":
        return KIND_COLOURS["input"]
    for key, names in (
        ("conv", ("conv",)),
        ("linear", ("linear",)),
        ("norm", ("norm",)),
        ("pool", ("pool",)),
        ("merge", ("add", "concat", "multiply")),
    ):
        if any(n in kind for n in names):
            return KIND_COLOURS[key]
    return "#f1f3f5"


def draw(compiled: Compiled, path: Path) -> Path:
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise UserError(f"cannot draw to '{path.name}': use a .svg, .png or .pdf file name")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    spec, inferred = compiled.spec, compiled.inferred
    nodes = [
        (name, "input", ("batch", *inp.shape), 0, [])
        for name, inp in compiled.parsed.inputs.items()
    ]
    for i in inferred.order:
        layer = compiled.parsed.layers[i]
        shape = inferred.out_shapes[layer.name]
        nodes.append((layer.name, layer.type, shape, inferred.params[i], list(layer.from_ or [])))
    row = {name: k for k, (name, *_rest) in enumerate(nodes)}
    step, width, height = 1.0, 3.8, 0.62
    fig_h = max(2.0, 0.78 * len(nodes) + 0.8)
    plt.rcParams["svg.fonttype"] = "none"
    fig, ax = plt.subplots(figsize=(6.2, fig_h))
    ax.set_xlim(-3.4, 3.4)
    ax.set_ylim(-(len(nodes) - 0.4) * step, 0.9)
    ax.axis("off")
    title = f"{spec.name}: {inferred.total_params:,} parameters"
    ax.text(0, 0.55, title, ha="center", va="center", fontsize=10, weight="bold")
    for k, (name, kind, shape, params, _) in enumerate(nodes):
        y = -k * step
        box = FancyBboxPatch(
            (-width / 2, y - height / 2),
            width,
            height,
            boxstyle="round,pad=0.02,rounding_size=0.08",
            facecolor=_colour(kind),
            edgecolor="#495057",
            linewidth=0.8,
            gid=f"node:{name}",
        )
        ax.add_patch(box)
        shown = fmt_shape(tuple(shape[1:])) if kind == "input" else fmt_shape(tuple(shape))
        ax.text(0, y + 0.12, f"{name}  ({kind})", ha="center", va="center", fontsize=8.5)
        detail = f"{shown}" + (f"  ·  {params:,} params" if params else "")
        ax.text(0, y - 0.15, detail, ha="center", va="center", fontsize=7.5, color="#343a40")
    side = 1
    for k, (name, _kind, _shape, _params, refs) in enumerate(nodes):
        for ref in refs:
            src = row[ref]
            start, end = (0, -src * step - height / 2), (0, -k * step + height / 2)
            if src == k - 1:
                style, posa = "arc3,rad=0", (start, end)
            else:  # a skip or a branch: around the side, alternating sides
                x = side * width / 2
                posa = ((x, -src * step), (x, -k * step))
                style = f"arc3,rad={-0.35 * side}"
                side = -side
            ax.add_patch(
                FancyArrowPatch(
                    *posa,
                    arrowstyle="-|>",
                    mutation_scale=9,
                    connectionstyle=style,
                    color="#495057",
                    linewidth=0.9,
                    gid=f"edge:{ref}->{name}",
                )
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format=path.suffix[1:].lower(), dpi=150, bbox_inches="tight")
    plt.close(fig)
    return path
