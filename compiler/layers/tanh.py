"""tanh: Hyperbolic tangent, elementwise."""

from __future__ import annotations

from typing import ClassVar, Literal

from .base import Layer


class Tanh(Layer):
    """Hyperbolic tangent, elementwise."""

    type: Literal["tanh"]

    doc_example: ClassVar[str] = "- tanh"

    def call(self, module, args, shapes):
        return f"torch.tanh({args[0]})"
