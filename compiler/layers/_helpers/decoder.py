"""The one-to-many decoder layer: unrolls a recurrent cell from a vector. Inlined into model.py by specc (layers/_helpers/__init__.py)."""

from __future__ import annotations

import torch
from torch import nn


class Decoder(nn.Module):
    """One-to-many: unrolls a recurrent cell for `steps` steps from a vector.

    The vector sets the first state (through a linear bridge and tanh). Each step reads the
    previous step's output, the argmax embedded for tokens or the values themselves, and the
    first step reads a learned start vector. In training, with probability `teacher_forcing`
    per step, a step reads the true previous target instead (padding, -100, reads token 0).
    """

    def __init__(
        self,
        in_features: int,
        hidden_size: int,
        out_features: int,
        steps: int,
        cell: str = "gru",
        tokens: bool = True,
        embedding_dim: int = 16,
        teacher_forcing: float = 0.5,
    ):
        super().__init__()
        self.steps, self.tokens, self.teacher_forcing, self.lstm = steps, tokens, teacher_forcing, cell == "lstm"
        feed = embedding_dim if tokens else out_features
        self.bridge = nn.Linear(in_features, hidden_size * (2 if self.lstm else 1))
        self.embed = nn.Embedding(out_features, embedding_dim) if tokens else None
        self.start = nn.Parameter(torch.zeros(feed))
        self.cell = {"rnn": nn.RNNCell, "gru": nn.GRUCell, "lstm": nn.LSTMCell}[cell](feed, hidden_size)
        self.head = nn.Linear(hidden_size, out_features)

    def forward(self, v: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        state = torch.tanh(self.bridge(v))
        if self.lstm:
            state = tuple(state.chunk(2, dim=-1))
        step_in = self.start.expand(v.shape[0], -1)
        outs = []
        for t in range(self.steps):
            state = self.cell(step_in, state)
            out = self.head(state[0] if self.lstm else state)
            outs.append(out)
            forced = self.training and targets is not None and bool(torch.rand(()) < self.teacher_forcing)
            if forced:
                prev = targets[:, t].clamp_min(0) if self.tokens else targets[:, t]
            else:
                prev = out.argmax(dim=-1) if self.tokens else out
            step_in = self.embed(prev) if self.tokens else prev
        return torch.stack(outs, dim=1)
