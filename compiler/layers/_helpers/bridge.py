"""An encoder's final state -> a decoder's first state. Inlined into model.py by specc (layers/_helpers/__init__.py)."""

from __future__ import annotations

import torch
from torch import nn


class Bridge(nn.Module):
    """An encoder's final state -> a decoder's first state: tanh(W s + b) for each of the
    decoder's state tensors (h, and c for an LSTM), as in Cho et al. 2014 and Bahdanau et al. 2015.

    forward(source): a recurrent encoder's final state (its top layer, every direction,
    concatenated) or a vector (batch, in_features) -> (layers, batch, hidden), or (h, c).
    """

    def __init__(self, in_features: int, directions: int, layers: int, hidden: int, states: int):
        super().__init__()
        self.directions, self.layers, self.hidden = directions, layers, hidden
        self.maps = nn.ModuleList(nn.Linear(in_features, layers * hidden) for _ in range(states))

    def forward(self, source) -> torch.Tensor | tuple[torch.Tensor, ...]:
        if isinstance(source, tuple):  # an LSTM's (h, c): the bridge reads h
            source = source[0]
        if source.dim() == 3:  # (layers * directions, batch, hidden) -> the top layer, (batch, directions * hidden)
            source = torch.cat(tuple(source[-self.directions :]), dim=-1)
        out = tuple(
            torch.tanh(m(source)).reshape(-1, self.layers, self.hidden).transpose(0, 1).contiguous() for m in self.maps
        )
        return out if len(out) > 1 else out[0]


def with_bridge(rnn: nn.Module, in_features: int, directions: int) -> nn.Module:
    """Give a decoder's recurrent layer the bridge its first state comes through."""
    states = 2 if rnn.mode == "LSTM" else 1
    rnn.bridge = Bridge(in_features, directions, rnn.num_layers, rnn.hidden_size, states)
    return rnn
