"""Multi-head attention written out, with masks and a key/value cache. Inlined into model.py by specc (layers/_helpers/__init__.py)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MultiheadAttention(nn.Module):
    """Multi-head scaled dot-product attention (Vaswani et al. 2017), written out so the exported
    graph keeps dynamic lengths and masks: per head, softmax(Q K^T / sqrt(d_head) + mask) V.

    forward(query (B, Tq, D), memory (B, Tk, Dk), causal, lengths) -> (context (B, Tq, D),
    weights (B, heads, Tq, Tk)). lengths (B,): keys at or after a sequence's length are padding
    and get no weight; causal: position i attends to keys 0..i only.
    """

    def __init__(self, dim: int, num_heads: int, kdim: int | None = None, dropout: float = 0.0, bias: bool = True):
        super().__init__()
        self.heads, self.dropout = num_heads, dropout
        self.q = nn.Linear(dim, dim, bias=bias)
        self.k = nn.Linear(kdim or dim, dim, bias=bias)
        self.v = nn.Linear(kdim or dim, dim, bias=bias)
        self.out = nn.Linear(dim, dim, bias=bias)

    def project(self, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The memory's keys and values, (B, heads, Tk, head) each."""
        b, head = memory.shape[0], self.q.out_features // self.heads
        k = self.k(memory).reshape(b, -1, self.heads, head).transpose(1, 2)
        return k, self.v(memory).reshape(b, -1, self.heads, head).transpose(1, 2)

    def forward(
        self,
        query: torch.Tensor,
        memory: torch.Tensor | None,
        causal: bool = False,
        lengths: torch.Tensor | None = None,
        cache: tuple | None = None,
        projected: tuple | None = None,
    ):
        """cache: (keys, values) of earlier positions (B, heads, past, head), for decoding one
        step at a time; the keys and values with this call's appended come back third.
        projected: the memory's keys and values, already computed (project(memory))."""
        b, dim = query.shape[0], self.q.out_features
        head = dim // self.heads
        q = self.q(query).reshape(b, -1, self.heads, head).transpose(1, 2)  # (B, heads, Tq, head)
        k, v = projected if projected is not None else self.project(memory)  # (B, heads, Tk, head)
        if cache is not None:
            k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)
        scores = q @ k.transpose(-2, -1) / head**0.5  # (B, heads, Tq, Tk)
        if lengths is not None:
            keys = torch.arange(k.shape[2], device=k.device)
            padding = keys[None, :] >= lengths.clamp(min=1)[:, None]  # (B, Tk)
            scores = scores.masked_fill(padding[:, None, None, :], float("-inf"))
        if causal:  # query i sits at key position past + i, and sees keys up to there
            tq, tk = q.shape[2], k.shape[2]
            future = torch.ones(tq, tk, dtype=torch.bool, device=query.device).triu(tk - tq + 1)
            scores = scores.masked_fill(future, float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        context = F.dropout(weights, self.dropout, self.training) @ v  # (B, heads, Tq, head)
        out = self.out(context.transpose(1, 2).reshape(b, -1, dim))
        return (out, weights) if cache is None else (out, weights, (k, v))
