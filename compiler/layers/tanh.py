"""tanh: Hyperbolic tangent, elementwise."""

from __future__ import annotations

from typing import ClassVar, Literal

from .base import Layer


class Tanh(Layer):
    """Hyperbolic tangent, elementwise."""

    type: Literal["tanh"]

    doc_example: ClassVar[str] = "- tanh"
    doc_shapes: ClassVar[str] = "the same shape"
    cost_per_element: ClassVar[float] = 4  # exp-based
    per_step: ClassVar[bool] = True

    def call(self, module, args, shapes):
        return f"torch.tanh({args[0]})"
