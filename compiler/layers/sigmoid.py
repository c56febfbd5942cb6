"""sigmoid: Logistic sigmoid, 1 / (1 + exp(-x)), elementwise."""

from __future__ import annotations

from typing import ClassVar, Literal

from .base import Layer


class Sigmoid(Layer):
    """Logistic sigmoid, 1 / (1 + exp(-x)), elementwise."""

    type: Literal["sigmoid"]

    doc_example: ClassVar[str] = "- sigmoid"
    doc_shapes: ClassVar[str] = "the same shape"
    cost_per_element: ClassVar[float] = 4  # exp, add, divide
    per_step: ClassVar[bool] = True

    def call(self, module, args, shapes):
        return f"torch.sigmoid({args[0]})"
