"""Single-head attention: dot, general and additive scores. Inlined into model.py by specc (layers/_helpers/__init__.py)."""

from __future__ import annotations

import torch
from torch import nn


class Attention(nn.Module):
    """Single-head attention of a query sequence over a memory, with one of three scores:
    dot (scaled, Vaswani et al. 2017), general (q^T W k, Luong et al. 2015) or additive
    (v^T tanh(W_q q + W_k k), Bahdanau et al. 2015). Returns (context (B, Tq, Dk), weights (B, Tq, Tk)).
    """

    def __init__(self, query_dim: int, memory_dim: int, score: str = "dot", attention_size: int = 64):
        super().__init__()
        self.score = score
        if score == "general":
            self.w = nn.Linear(memory_dim, query_dim, bias=False)
        if score == "additive":
            self.w_q = nn.Linear(query_dim, attention_size, bias=False)
            self.w_k = nn.Linear(memory_dim, attention_size, bias=True)
            self.v = nn.Linear(attention_size, 1, bias=False)

    def forward(
        self, query: torch.Tensor, memory: torch.Tensor, causal: bool = False, lengths: torch.Tensor | None = None
    ):
        if self.score == "dot":
            scores = query @ memory.transpose(1, 2) / query.shape[-1] ** 0.5
        elif self.score == "general":
            scores = query @ self.w(memory).transpose(1, 2)
        else:  # (B, Tq, 1, A) + (B, 1, Tk, A) -> (B, Tq, Tk)
            scores = self.v(torch.tanh(self.w_q(query)[:, :, None] + self.w_k(memory)[:, None])).squeeze(-1)
        if lengths is not None:
            keys = torch.arange(memory.shape[1], device=memory.device)
            scores = scores.masked_fill((keys[None, :] >= lengths.clamp(min=1)[:, None])[:, None, :], float("-inf"))
        if causal:
            future = torch.ones(query.shape[1], memory.shape[1], dtype=torch.bool, device=query.device).triu(1)
            scores = scores.masked_fill(future, float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        return weights @ memory, weights
