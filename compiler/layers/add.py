"""add: elementwise sum of two or more inputs of one shape (residual connections)."""

from __future__ import annotations

import math
from typing import ClassVar, Literal

from .base import Layer, ShapeError, fmt_shape


class Add(Layer):
    """Sum of the layers named in `from:` (all the same shape; no broadcasting)."""

    type: Literal["add"]
    arity: ClassVar[str] = "many"
    doc_example: ClassVar[str] = "- {type: add, from: [shortcut, branch]}"
    doc_shapes: ClassVar[str] = "the same shape from each input -> their sum"
    per_step: ClassVar[bool] = True

    def infer(self, shapes):
        if len(shapes) < 2:
            raise ShapeError("add needs at least two inputs in 'from:'", field="from")
        if any(s != shapes[0] for s in shapes[1:]):
            raise ShapeError(
                "add needs inputs of one shape, got " + " and ".join(fmt_shape(s) for s in shapes)
            )
        return shapes[0]

    def call(self, module, args, shapes):
        return " + ".join(args)

    def flops(self, shapes, out):
        return (len(shapes) - 1) * math.prod(out)
