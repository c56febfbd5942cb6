"""linear: fully connected layer y = x W^T + b over the last dimension."""

from __future__ import annotations

import math
from typing import ClassVar, Literal

from pydantic import Field

from .base import Layer, ShapeError, SizeOrVocab, args, fmt_shape, need_int, opt


class Linear(Layer):
    """Fully connected layer; `in_features` is inferred from the last input dimension."""

    type: Literal["linear"]
    out_features: SizeOrVocab = Field(
        description="Output size; `vocab`: one output per token of the text data's vocabulary."
    )
    bias: bool = Field(True, description="Learn an additive bias.")

    doc_example: ClassVar[str] = "- {type: linear, out_features: 10}"
    doc_shapes: ClassVar[str] = "(F) or (T, F) -> (..., out_features)"
    per_step: ClassVar[bool] = True

    def infer(self, shapes):
        shape = shapes[0]
        if len(shape) not in (1, 2):
            raise ShapeError(
                f"linear expects input (batch, features) or (batch, time, features), got {fmt_shape(shape)}",
                hint="add a 'flatten' layer before it to turn a feature map into a vector",
            )
        need_int(shape[-1], "linear's input features")
        return (*shape[:-1], self.out_features)

    def flops(self, shapes, out):
        positions = math.prod(out[:-1])  # (time,) for a sequence, () for a vector
        return positions * (2 * shapes[0][-1] + (1 if self.bias else 0)) * out[-1]

    def param_count(self, shapes):
        return shapes[0][-1] * self.out_features + (self.out_features if self.bias else 0)

    def module(self, shapes):
        return (
            "nn.Linear(" + args(shapes[0][-1], self.out_features, bias=opt(self.bias, True)) + ")"
        )
