"""elu: Exponential linear unit: x if x > 0 else alpha * (exp(x) - 1)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from ..sanitize import lit
from .base import Layer


class Elu(Layer):
    """Exponential linear unit: x if x > 0 else alpha * (exp(x) - 1)."""

    type: Literal["elu"]
    alpha: float = Field(1.0, gt=0, description="Scale of the negative part.")
    doc_example: ClassVar[str] = "- {type: elu, alpha: 1.0}"
    doc_shapes: ClassVar[str] = "the same shape"
    cost_per_element: ClassVar[float] = 3  # compare, exp, scale
    per_step: ClassVar[bool] = True

    def call(self, module, args, shapes):
        return f"F.elu({args[0]}" + (f", alpha={lit(self.alpha)})" if self.alpha != 1.0 else ")")
