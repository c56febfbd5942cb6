"""`specc graph`: a picture of the network for people who would rather look than read.

One box per input and layer, top to bottom in forward order, each with its name, type, output
shape and parameter count, coloured by what kind of layer it is (a legend says which colour is
which). A task's sections (encoder and decoder, generator and discriminator) are framed and
named. Every `from:` reference is an arrow: the usual chain runs straight down; skip
connections and branches run in lanes beside the boxes, each in its own lane, so the picture
grows to hold them and nothing is cut off. Boxes are as wide as their longest text, measured
in the font they are drawn with.

Written with matplotlib as SVG (text kept as text, so names are searchable), PNG or PDF. The
same spec gives the same bytes: no creation date, fixed SVG ids.
"""

from __future__ import annotations

from pathlib import Path

from .diagnostics import UserError
from .layers.base import fmt_shape
from .pipeline import Compiled

FORMATS = (".svg", ".png", ".pdf")

# kind: (fill colour, legend text), in legend order
KINDS = {
    "input": ("#cfe2f3", "input"),
    "conv": ("#fcd9b6", "convolution"),
    "linear": ("#d4ecc9", "linear"),
    "recurrent": ("#bfe6e6", "recurrent"),
    "attention": ("#ecc8ef", "attention / transformer"),
    "embedding": ("#fff0a8", "embedding / positions"),
    "norm": ("#dcd8f4", "normalization"),
    "pool": ("#eadfc8", "pooling / resampling"),
    "merge": ("#f6c4c0", "merge (add, concat)"),
    "latent": ("#b8ddb0", "latent code"),
    "activation": ("#e9ecef", "activation"),
    "shape": ("#ffffff", "shape (flatten, reshape)"),
    "other": ("#f5f5f5", "other (dropout, ...)"),
}
ACTIVATIONS = ("relu", "sigmoid", "tanh", "gelu", "elu", "leaky_relu", "softmax", "log_softmax")
FONT, SMALL, TITLE = 8.5, 7.5, 10.0  # points
ROW, BOX_H = 0.78, 0.56  # inches: distance between rows, box height
LANE = 0.16  # inches between the lanes of skip connections


def kind_of(layer) -> str:
    """What a layer is, for its colour: from its type's flags and name."""
    t = layer.type
    if layer.recurrent or layer.torch_recurrent:
        return "recurrent"
    if layer.is_latent:
        return "latent"
    if layer.attends_memory or layer.cached_attention or "attention" in t or "transformer" in t:
        return "attention"
    if t in ("embedding", "positional_encoding"):
        return "embedding"
    if t in ("decoder",):
        return "recurrent"
    if "conv" in t:
        return "conv"
    if t == "linear":
        return "linear"
    if "norm" in t:
        return "norm"
    if "pool" in t or t == "upsample":
        return "pool"
    if t in ("add", "concat", "multiply"):
        return "merge"
    if t in ACTIVATIONS:
        return "activation"
    if t in ("flatten", "reshape", "identity"):
        return "shape"
    return "other"


def _width(text: str, size: float) -> float:
    """The drawn width of `text` in inches, in matplotlib's default font at `size` points."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextToPath

    width, _, _ = TextToPath().get_text_width_height_descent(
        text, FontProperties(size=size), ismath=False
    )
    return width / 72.0


def draw(compiled: Compiled, path: Path) -> Path:
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise UserError(f"cannot draw to '{path.name}': use a .svg, .png or .pdf file name")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Patch
    from matplotlib.path import Path as Curve

    spec, inferred, parsed = compiled.spec, compiled.inferred, compiled.parsed
    # (name, type, kind, shape, params, refs, section)
    nodes = [
        (name, "input", "input", tuple(inp.shape), 0, [], "inputs")
        for name, inp in parsed.inputs.items()
    ]
    for i in inferred.order:
        layer = parsed.layers[i]
        nodes.append(
            (
                layer.name,
                layer.type,
                kind_of(layer),
                tuple(inferred.out_shapes[layer.name]),
                inferred.params[i],
                list(layer.from_ or []),
                parsed.section(i),
            )
        )
    labels = [
        (
            f"{name}  ({kind_type})",
            fmt_shape(shape) + (f"  ·  {params:,} params" if params else ""),
        )
        for name, kind_type, _k, shape, params, _r, _s in nodes
    ]
    box_w = max(max(_width(a, FONT), _width(b, SMALL)) for a, b in labels) + 0.4
    sections = [s for s in dict.fromkeys(n[6] for n in nodes) if s != "inputs"]
    framed = len(sections) > 1

    # rows, top to bottom; a gap (for the frame's name) where a framed section starts
    ys, y = [], 0.0
    for k, node in enumerate(nodes):
        if framed and k and node[6] != nodes[k - 1][6]:
            y -= 0.42
        ys.append(y)
        y -= ROW
    row = {n[0]: k for k, n in enumerate(nodes)}

    # skip connections and branches: each in its own lane, alternating right and left
    lanes, side_count = [], {1: 0, -1: 0}
    for k, node in enumerate(nodes):
        for ref in node[5]:
            src = row[ref]
            if src == k - 1:
                continue
            side = 1 if side_count[1] <= side_count[-1] else -1
            side_count[side] += 1
            lanes.append((src, k, side, side_count[side]))
    frame_pad = 0.14 if framed else 0.0
    reach = box_w / 2 + frame_pad + 0.12 + LANE * max(side_count.values())
    half = max(
        reach + 0.15, _width(f"{spec.name}: {inferred.total_params:,} parameters", TITLE) / 2
    )
    top, bottom = 0.75, ys[-1] - BOX_H / 2 - 0.2

    with plt.rc_context({"svg.fonttype": "none", "svg.hashsalt": "specc"}):
        fig = plt.figure(figsize=(2 * half, top - bottom))
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_xlim(-half, half)
        ax.set_ylim(bottom, top)
        ax.axis("off")
        title = f"{spec.name}: {inferred.total_params:,} parameters"
        ax.text(0, 0.45, title, ha="center", va="center", fontsize=TITLE, weight="bold")

        if framed:  # a frame around each section, named at its top left
            for section in sections:
                ks = [k for k, n in enumerate(nodes) if n[6] == section]
                y0, y1 = ys[ks[0]] + BOX_H / 2 + 0.3, ys[ks[-1]] - BOX_H / 2 - 0.1
                x0 = -box_w / 2 - frame_pad
                ax.add_patch(
                    FancyBboxPatch(
                        (x0, y1),
                        box_w + 2 * frame_pad,
                        y0 - y1,
                        boxstyle="round,pad=0,rounding_size=0.1",
                        facecolor="none",
                        edgecolor="#868e96",
                        linewidth=0.9,
                        linestyle=(0, (4, 2)),
                        gid=f"section:{section}",
                    )
                )
                ax.text(
                    x0 + 0.1,
                    y0 - 0.13,
                    section,
                    ha="left",
                    va="center",
                    fontsize=SMALL,
                    style="italic",
                    weight="bold",
                    color="#495057",
                )

        for k, (name, _type, kind, _shape, _params, _refs, _section) in enumerate(nodes):
            ax.add_patch(
                FancyBboxPatch(
                    (-box_w / 2, ys[k] - BOX_H / 2),
                    box_w,
                    BOX_H,
                    boxstyle="round,pad=0,rounding_size=0.08",
                    facecolor=KINDS[kind][0],
                    edgecolor="#495057",
                    linewidth=0.8,
                    gid=f"node:{name}",
                )
            )
            ax.text(0, ys[k] + 0.1, labels[k][0], ha="center", va="center", fontsize=FONT)
            ax.text(
                0,
                ys[k] - 0.13,
                labels[k][1],
                ha="center",
                va="center",
                fontsize=SMALL,
                color="#343a40",
            )

        arrow = dict(arrowstyle="-|>", mutation_scale=9, color="#495057", linewidth=0.9)
        laned = {(src, k): (side, lane) for src, k, side, lane in lanes}
        for k, node in enumerate(nodes):
            for ref in node[5]:
                src, gid = row[ref], f"edge:{ref}->{node[0]}"
                if (src, k) not in laned:  # the chain: straight down
                    start, end = (0, ys[src] - BOX_H / 2), (0, ys[k] + BOX_H / 2)
                    ax.add_patch(FancyArrowPatch(start, end, gid=gid, **arrow))
                    continue
                side, lane = laned[src, k]
                edge, x = side * box_w / 2, side * (box_w / 2 + frame_pad + 0.12 + LANE * lane)
                # leave a box below its middle and enter one above it: lanes that meet at one
                # box stay apart
                y0, y1 = ys[src] - 0.12, ys[k] + 0.1
                points = [(edge, y0), (x, y0), (x, y1), (edge, y1)]
                curve = Curve(points, [Curve.MOVETO] + [Curve.LINETO] * 3)
                ax.add_patch(FancyArrowPatch(path=curve, gid=gid, **arrow))

        kinds = list(dict.fromkeys(n[2] for n in nodes))
        handles = [
            Patch(facecolor=KINDS[kd][0], edgecolor="#495057", linewidth=0.6, label=KINDS[kd][1])
            for kd in KINDS
            if kd in kinds
        ]
        ax.legend(
            handles=handles,
            loc="upper center",
            bbox_to_anchor=(0.5, 0.0),
            ncol=min(3, len(handles)),
            fontsize=SMALL,
            frameon=False,
            handlelength=1.4,
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        fmt = path.suffix[1:].lower()
        stamp = {"svg": {"Date": None}, "pdf": {"CreationDate": None}, "png": {}}[fmt]
        fig.savefig(path, format=fmt, dpi=150, bbox_inches="tight", metadata=stamp)
        plt.close(fig)
    return path
