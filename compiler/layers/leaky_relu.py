"""leaky_relu: Leaky ReLU: x if x > 0 else negative_slope * x."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from ..sanitize import lit
from .base import Layer


class LeakyRelu(Layer):
    """Leaky ReLU: x if x > 0 else negative_slope * x."""

    type: Literal["leaky_relu"]
    negative_slope: float = Field(0.01, description="Slope for negative inputs.")
    doc_example: ClassVar[str] = "- {type: leaky_relu, negative_slope: 0.1}"
    doc_shapes: ClassVar[str] = "the same shape"
    per_step: ClassVar[bool] = True

    def call(self, module, args, shapes):
        return f"F.leaky_relu({args[0]}, {lit(self.negative_slope)})"
