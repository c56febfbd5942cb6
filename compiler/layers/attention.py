"""attention: one head of attention over a memory, scored by dot product, bilinear or additive."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, PositiveInt

from ._attention import attention_args, split_inputs
from .base import ReadsLengths, ShapeError, args


class Attention(ReadsLengths):
    """from: [query, memory] (or one sequence, attending over itself) -> the context per query
    position (batch, Tq, memory features), or the weights (batch, Tq, Tk)."""

    type: Literal["attention"]
    score: Literal["dot", "general", "additive"] = Field(
        "dot",
        description="dot: q.k / sqrt(d) (needs equal sizes); general: q^T W k (Luong); "
        "additive: v^T tanh(W q + U k) (Bahdanau).",
    )
    attention_size: PositiveInt = Field(64, description="additive: the hidden size of the score.")
    causal: bool = Field(False, description="Position i attends to positions 0..i only.")
    lengths: str | None = Field(
        None, description="An int64 input of shape [] with each memory's length (key padding)."
    )
    output: Literal["context", "weights"] = Field("context", description="What the layer gives.")

    arity: ClassVar[str] = "many"
    attends_memory: ClassVar[bool] = True
    doc_example: ClassVar[str] = "- {type: attention, score: additive, from: [query, memory]}"
    doc_shapes: ClassVar[str] = "(Tq, Dq), (Tk, Dk) -> (Tq, Dk)"

    def infer(self, shapes):
        query, memory, _ = split_inputs(self, shapes)
        if self.score == "dot" and query[-1] != memory[-1]:
            raise ShapeError(
                f"dot-product scores need queries and keys of one size, got {query[-1]} and {memory[-1]}",
                hint="use score: general or additive, which learn the mapping",
                field="score",
            )
        if self.output == "weights":
            return (query[0], memory[0])
        return (query[0], memory[-1])

    def param_count(self, shapes):
        query, memory, _ = split_inputs(self, shapes)
        q, k, a = query[-1], memory[-1], self.attention_size
        return {"dot": 0, "general": q * k, "additive": q * a + k * a + a + a}[self.score]

    def flops(self, shapes, out):
        query, memory, _ = split_inputs(self, shapes)
        (tq, q), (tk, k), a = query, memory, self.attention_size
        weighted_sum = 2 * tq * tk * k
        if self.score == "dot":
            return 2 * tq * tk * q + weighted_sum
        if self.score == "general":
            return 2 * tk * k * q + 2 * tq * tk * q + weighted_sum
        return 2 * (tq * q + tk * k) * a + 3 * tq * tk * a + weighted_sum  # additive

    def helpers(self):
        return ("Attention",)

    def module(self, shapes):
        query, memory, _ = split_inputs(self, shapes)
        return (
            "Attention("
            + args(query[-1], memory[-1], score=self.score, attention_size=self.attention_size)
            + ")"
        )

    def call(self, module, args, shapes):
        _, _, lengths = split_inputs(self, shapes)
        cross = len(args) - int(lengths) == 2
        query, memory, n = attention_args(args, cross, lengths)
        index = 1 if self.output == "weights" else 0
        return f"{module}({query}, {memory}, causal={self.causal}, lengths={n})[{index}]"
