"""IRNN initialisation: identity recurrent weights. Inlined into model.py by specc (layers/_helpers/__init__.py)."""

from __future__ import annotations

import torch
from torch import nn


def identity_recurrent(rnn: nn.RNN) -> nn.RNN:
    """IRNN initialisation (Le, Jaitly, Hinton 2015): recurrent weights = identity, biases = 0."""
    with torch.no_grad():
        for name, p in rnn.named_parameters():
            if name.startswith("weight_hh"):
                p.copy_(torch.eye(p.shape[0]))
            elif name.startswith("bias"):
                p.zero_()
    return rnn
