"""multihead_attention: scaled dot-product attention with several heads, self or cross."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, NonNegativeFloat, PositiveInt

from ._attention import attention_args, split_inputs
from .base import ReadsLengths, ShapeError, args


class MultiheadAttention(ReadsLengths):
    """from: [x] attends over itself; from: [query, memory] attends over the memory.

    (batch, Tq, D) -> (batch, Tq, D) context, or the weights (batch, heads, Tq, Tk).
    """

    type: Literal["multihead_attention"]
    num_heads: PositiveInt = Field(description="Heads; must divide the query's features.")
    dropout: NonNegativeFloat = Field(0.0, lt=1.0, description="Dropout on the attention weights.")
    bias: bool = Field(True, description="Biases in the projections.")
    causal: bool = Field(False, description="Position i attends to positions 0..i only.")
    lengths: str | None = Field(
        None, description="An int64 input of shape [] with each memory's length (key padding)."
    )
    output: Literal["context", "weights"] = Field("context", description="What the layer gives.")

    arity: ClassVar[str] = "many"
    attends_memory: ClassVar[bool] = True
    doc_example: ClassVar[str] = (
        "- {type: multihead_attention, num_heads: 2, from: [query, memory]}"
    )
    doc_shapes: ClassVar[str] = "(Tq, D), [(Tk, Dk)] -> (Tq, D)"

    def infer(self, shapes):
        query, memory, _ = split_inputs(self, shapes)
        dim = query[-1]
        if dim % self.num_heads:
            raise ShapeError(
                f"num_heads {self.num_heads} does not divide the model size {dim}",
                hint=f"use a divisor of {dim}",
                field="num_heads",
            )
        if self.output == "weights":
            return (self.num_heads, query[0], memory[0])
        return query

    def param_count(self, shapes):
        query, memory, _ = split_inputs(self, shapes)
        d, k = query[-1], memory[-1]
        extra = 4 * d if self.bias else 0
        return d * d + 2 * k * d + d * d + extra

    def flops(self, shapes, out):
        query, memory, _ = split_inputs(self, shapes)
        (tq, d), (tk, k) = query, memory
        projections = 2 * tq * d * d * 2 + 2 * tk * k * d * 2  # q and out; k and v
        return projections + 2 * tq * tk * d * 2  # scores, and the weighted sum of values

    def helpers(self):
        return ("MultiheadAttention",)

    def module(self, shapes):
        query, memory, _ = split_inputs(self, shapes)
        kdim = memory[-1] if memory[-1] != query[-1] else None
        return (
            "MultiheadAttention("
            + args(query[-1], self.num_heads, kdim=kdim, dropout=self.dropout, bias=self.bias)
            + ")"
        )

    def call(self, module, args, shapes):
        _, _, lengths = split_inputs(self, shapes)
        cross = len(args) - int(lengths) == 2
        query, memory, n = attention_args(args, cross, lengths)
        index = 1 if self.output == "weights" else 0
        return f"{module}({query}, {memory}, causal={self.causal}, lengths={n})[{index}]"
