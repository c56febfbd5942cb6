"""flatten: (batch, d1, d2, ...) -> (batch, d1 * d2 * ...)."""

from __future__ import annotations

from typing import ClassVar, Literal

from .base import Layer, product


class Flatten(Layer):
    """Flattens every dimension but the batch into one feature vector."""

    type: Literal["flatten"]
    doc_example: ClassVar[str] = "- flatten"
    doc_shapes: ClassVar[str] = "(d1, d2, ...) -> (d1*d2*...)"
    cost_per_element: ClassVar[float] = 0  # moves or looks up values, computes nothing

    def infer(self, shapes):
        return (product(shapes[0]),)

    def call(self, module, args, shapes):
        return f"torch.flatten({args[0]}, 1)"
