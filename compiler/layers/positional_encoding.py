"""positional_encoding: adds each position's code to a sequence (sinusoidal or learned)."""

from __future__ import annotations

import math
from typing import ClassVar, Literal

from pydantic import Field, NonNegativeFloat, PositiveInt

from .base import Layer, ShapeError, args, fmt_shape, need_int


class PositionalEncoding(Layer):
    """(batch, time, D) -> same shape, plus position information."""

    type: Literal["positional_encoding"]
    kind: Literal["sinusoidal", "learned"] = Field(
        "sinusoidal", description="sinusoidal: fixed, any length; learned: a table of max_len rows."
    )
    max_len: PositiveInt = Field(512, description="learned: the longest sequence it can encode.")
    dropout: NonNegativeFloat = Field(0.0, lt=1.0, description="Dropout after adding.")

    doc_example: ClassVar[str] = "- {type: positional_encoding, kind: sinusoidal}"
    doc_shapes: ClassVar[str] = "(T, D) -> the same"
    positional: ClassVar[bool] = True

    def infer(self, shapes):
        if len(shapes[0]) != 2:
            raise ShapeError(
                f"positional_encoding expects a sequence (batch, time, features), got {fmt_shape(shapes[0])}"
            )
        need_int(shapes[0][-1], "positional_encoding's features")
        if isinstance(shapes[0][0], int) and self.kind == "learned" and shapes[0][0] > self.max_len:
            raise ShapeError(
                f"sequences of {shapes[0][0]} steps are longer than the learned table's {self.max_len} rows",
                field="max_len",
            )
        return shapes[0]

    def flops(self, shapes, out):
        return math.prod(out)  # an addition per element

    def param_count(self, shapes):
        return self.max_len * shapes[0][-1] if self.kind == "learned" else 0

    def helpers(self):
        return ("PositionalEncoding",)

    def module(self, shapes):
        return (
            "PositionalEncoding("
            + args(shapes[0][-1], kind=self.kind, max_len=self.max_len, dropout=self.dropout)
            + ")"
        )
