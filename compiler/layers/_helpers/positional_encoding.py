"""Sinusoidal or learned positions. Inlined into model.py by specc (layers/_helpers/__init__.py)."""

from __future__ import annotations

import torch
from torch import nn


class PositionalEncoding(nn.Module):
    """Adds position information to (B, T, D): sinusoidal (Vaswani et al. 2017, any length) or
    a learned table of max_len rows."""

    def __init__(self, dim: int, kind: str = "sinusoidal", max_len: int = 512, dropout: float = 0.0):
        super().__init__()
        self.kind, self.dim, self.dropout = kind, dim, nn.Dropout(dropout)
        self.table = nn.Embedding(max_len, dim) if kind == "learned" else None

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        """offset: the position of x's first step (decoding continues after `offset` steps)."""
        positions = torch.arange(x.shape[1], device=x.device) + offset
        if self.table is not None:
            return self.dropout(x + self.table(positions))
        rates = 10000.0 ** (-torch.arange(0, self.dim, 2, device=x.device, dtype=torch.float32) / self.dim)
        angles = positions[:, None].float() * rates[None, :]  # (T, D/2)
        encoding = torch.stack([angles.sin(), angles.cos()], dim=-1).flatten(1)[:, : self.dim]  # sin, cos interleaved
        return self.dropout(x + encoding.to(x.dtype))
