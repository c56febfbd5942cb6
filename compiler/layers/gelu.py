"""gelu: Gaussian error linear unit (exact, or the tanh approximation)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from ..sanitize import lit
from .base import Layer


class Gelu(Layer):
    """Gaussian error linear unit (exact, or the tanh approximation)."""

    type: Literal["gelu"]
    approximate: Literal["none", "tanh"] = Field(
        "none", description="none (exact erf form) or tanh."
    )
    doc_example: ClassVar[str] = "- gelu"
    doc_shapes: ClassVar[str] = "the same shape"
    cost_per_element: ClassVar[float] = 8  # an erf or tanh approximation
    per_step: ClassVar[bool] = True

    def call(self, module, args, shapes):
        return f"F.gelu({args[0]}" + (
            f", approximate={lit(self.approximate)})" if self.approximate != "none" else ")"
        )
