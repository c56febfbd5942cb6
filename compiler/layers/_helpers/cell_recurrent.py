"""Runs a custom cell (written as equations in the spec) over time. Inlined into model.py by specc (layers/_helpers/__init__.py)."""

from __future__ import annotations

import torch
from torch import nn


class CellRecurrent(nn.Module):
    """Runs a cell over time: a Python loop in training, torch's scan (one ONNX Scan) on export.

    forward(x, hx=None, lengths=None) -> (outputs, final states), like torch's recurrent layers;
    padding (positions at or after `lengths`) leaves the states as they were and outputs zeros.
    """

    def __init__(self, cell: nn.Module, states: int, output_index: int, hidden_size: int, learned_init: bool = False):
        super().__init__()
        self.cell, self.states, self.output_index, self.hidden_size = cell, states, output_index, hidden_size
        self.h0 = nn.Parameter(torch.zeros(states, hidden_size)) if learned_init else None

    def initial_state(self, batch: int) -> tuple:
        """The states before the first step, each (batch, hidden)."""
        if self.h0 is None:
            like = next(self.parameters(), torch.zeros(()))
            return tuple(like.new_zeros(batch, self.hidden_size) for _ in range(self.states))
        return tuple(h.expand(batch, -1).contiguous() for h in self.h0)

    def _advance(self, state, x_t, keep):
        new = self.cell(x_t, state)
        if keep is not None:
            new = tuple(keep * n + (1 - keep) * s for n, s in zip(new, state))
        out = new[self.output_index]
        return new, (out * keep if keep is not None else out.clone())

    def forward(self, x: torch.Tensor, hx: tuple | None = None, lengths: torch.Tensor | None = None):
        if hx is None:
            hx = self.initial_state(x.shape[0])
        keep = None  # (time, batch, 1): 1 at real positions
        if lengths is not None:
            steps = torch.arange(x.shape[1], device=x.device)
            keep = (steps[:, None] < lengths.clamp(1, x.shape[1])[None, :]).to(x.dtype)[..., None]
        if torch.compiler.is_exporting():
            from torch._higher_order_ops.scan import scan

            def step(state, inputs):
                x_t, k = inputs if isinstance(inputs, tuple) else (inputs, None)
                return self._advance(state, x_t, k)

            seq = x.transpose(0, 1)
            state, ys = scan(step, tuple(hx), (seq, keep) if keep is not None else seq)
            return ys.transpose(0, 1), state
        state, outs = tuple(hx), []
        for t in range(x.shape[1]):
            state, out = self._advance(state, x[:, t], keep[t] if keep is not None else None)
            outs.append(out)
        return torch.stack(outs, dim=1), state
