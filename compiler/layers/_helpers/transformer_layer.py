"""Transformer encoder and decoder layers. Inlined into model.py by specc (layers/_helpers/__init__.py)."""

from __future__ import annotations

import torch
from torch import nn

from .multihead_attention import MultiheadAttention


class TransformerLayer(nn.Module):
    """A transformer encoder layer, or with cross=True a decoder layer (Vaswani et al. 2017):
    self-attention, [attention over a memory,] feed-forward; each a residual branch, with layer
    norm after it (norm_first=False, the original) or before it (pre-norm)."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        feedforward: int,
        dropout: float = 0.1,
        activation: str = "relu",
        norm_first: bool = False,
        cross: bool = False,
        memory_dim: int | None = None,
    ):
        super().__init__()
        self.norm_first = norm_first
        self.self_attention = MultiheadAttention(dim, num_heads, dropout=dropout)
        self.cross_attention = MultiheadAttention(dim, num_heads, kdim=memory_dim, dropout=dropout) if cross else None
        self.feedforward = nn.Sequential(
            nn.Linear(dim, feedforward),
            nn.GELU() if activation == "gelu" else nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(feedforward, dim),
        )
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(3 if cross else 2))
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        x: torch.Tensor,
        memory: torch.Tensor | None = None,
        causal: bool = False,
        lengths: torch.Tensor | None = None,
        memory_lengths: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return self._run(x, lambda h: self.self_attention(h, h, causal, lengths)[0], memory, memory_lengths)

    def step(
        self,
        x: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        memory_keys: torch.Tensor,
        memory_values: torch.Tensor,
        memory_lengths: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Causal decoding with a key/value cache: x (B, T, D) continues the cached positions,
        keys/values (B, heads, past, head); the memory comes as its keys and values
        (memory_kv(memory), computed once per source). Returns x and the cache, T positions longer."""
        cache = []

        def attend(h):
            out, _, kv = self.self_attention(h, h, True, None, cache=(keys, values))
            cache.append(kv)
            return out

        x = self._run(x, attend, None, memory_lengths, (memory_keys, memory_values))
        return x, cache[0][0], cache[0][1]

    def memory_kv(self, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The cross-attention's keys and values of a memory, (B, heads, S, head) each."""
        return self.cross_attention.project(memory)

    def empty_cache(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values of no positions yet: (batch, heads, 0, head) each."""
        attention = self.self_attention
        empty = attention.q.weight.new_zeros(batch, attention.heads, 0, attention.q.out_features // attention.heads)
        return empty, empty.clone()

    def _run(self, x, self_attend, memory, memory_lengths, projected=None):
        branches = [self_attend]
        if self.cross_attention is not None:
            branches.append(lambda h: self.cross_attention(h, memory, False, memory_lengths, projected=projected)[0])
        branches.append(self.feedforward)
        for norm, branch in zip(self.norms, branches):
            if self.norm_first:
                x = x + self.dropout(branch(norm(x)))
            else:
                x = norm(x + self.dropout(branch(x)))
        return x
