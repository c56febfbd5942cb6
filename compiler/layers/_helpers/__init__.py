"""Code model.py needs for some layer types, as real modules (linted, importable, tested), each
inlined into model.py when a layer of the spec names it in its `helpers()`.

Listed in the order a model.py defines them (a helper after those it builds on).
"""

from __future__ import annotations

from ...inline import Inlined, inline

HELPERS = {  # the name a layer's helpers() gives -> the module here that defines it
    "ExportableRecurrent": "exportable_recurrent",
    "identity_recurrent": "identity_recurrent",
    "orthogonal_recurrent": "orthogonal_recurrent",
    "CellRecurrent": "cell_recurrent",
    "Bridge": "bridge",
    "Decoder": "decoder",
    "GaussianLatent": "gaussian_latent",
    "Attention": "attention",
    "MultiheadAttention": "multihead_attention",
    "PositionalEncoding": "positional_encoding",
    "TransformerLayer": "transformer_layer",
}


def helper(name: str) -> Inlined:
    return inline(f"{__name__}.{HELPERS[name]}")
