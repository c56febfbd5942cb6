"""Orthogonal initialisation of recurrent weights. Inlined into model.py by specc (layers/_helpers/__init__.py)."""

from __future__ import annotations

import torch
from torch import nn


def orthogonal_recurrent(layer: nn.Module) -> nn.Module:
    """Recurrent weight matrices start orthogonal, one square block per gate (Saxe et al. 2014)."""
    with torch.no_grad():
        for name, p in layer.named_parameters():
            if name.startswith("weight_hh"):
                for block in p.split(p.shape[1]):
                    nn.init.orthogonal_(block)
    return layer
