"""What the transformer encoder and decoder layers share: sizes, norms and the module."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, NonNegativeFloat, PositiveInt

from ._attention import split_inputs
from .base import ReadsLengths, ShapeError, args


class TransformerBase(ReadsLengths):
    num_heads: PositiveInt = Field(description="Attention heads; must divide the model size.")
    feedforward: PositiveInt | None = Field(
        None, description="Hidden size of the feed-forward block (default 4 x model size)."
    )
    dropout: NonNegativeFloat = Field(0.1, lt=1.0, description="Dropout in every branch.")
    activation: Literal["relu", "gelu"] = Field("relu", description="Feed-forward activation.")
    norm: Literal["post", "pre"] = Field(
        "post", description="post: layer norm after each residual add (original); pre: before."
    )
    lengths: str | None = Field(None, description="An int64 input of shape []: key padding.")

    arity: ClassVar[str] = "many"
    cross: ClassVar[bool] = False

    def _sizes(self, shapes):
        query, memory, _ = split_inputs(self, shapes)
        inputs = len(shapes) - (1 if self.lengths else 0)
        if inputs != (2 if self.cross else 1):
            raise ShapeError(
                f"{self.type} reads "
                + (
                    "a target sequence and a memory (from: [x, memory])"
                    if self.cross
                    else "one sequence"
                ),
                field="from",
            )
        dim = query[-1]
        if dim % self.num_heads:
            raise ShapeError(
                f"num_heads {self.num_heads} does not divide the model size {dim}",
                hint=f"use a divisor of {dim}",
                field="num_heads",
            )
        return dim, memory[-1], self.feedforward or 4 * dim

    def infer(self, shapes):
        self._sizes(shapes)
        return shapes[0]

    def param_count(self, shapes):
        d, k, ff = self._sizes(shapes)
        attention = 4 * d * d + 4 * d
        cross = (2 * d * d + 2 * k * d + 4 * d) if self.cross else 0
        norms = (3 if self.cross else 2) * 2 * d
        return attention + cross + d * ff + ff + ff * d + d + norms

    def flops(self, shapes, out):
        """Self-attention (and attention over the memory), the feed-forward block, the norms."""
        d, k, ff = self._sizes(shapes)
        t = shapes[0][0]
        s = shapes[1][0] if self.cross else t
        attention = 4 * 2 * t * d * d + 2 * 2 * t * t * d
        cross = (2 * 2 * t * d * d + 2 * 2 * s * k * d + 2 * 2 * t * s * d) if self.cross else 0
        return attention + cross + 2 * 2 * t * d * ff + (3 if self.cross else 2) * 5 * t * d

    def helpers(self):
        return ("MultiheadAttention", "TransformerLayer")

    def module(self, shapes):
        d, k, ff = self._sizes(shapes)
        return (
            "TransformerLayer("
            + args(
                d,
                self.num_heads,
                ff,
                dropout=self.dropout,
                activation=self.activation,
                norm_first=self.norm == "pre",
                cross=self.cross,
                memory_dim=k if self.cross and k != d else None,
            )
            + ")"
        )
