"""relu: Rectified linear unit, max(0, x), elementwise."""

from __future__ import annotations

from typing import ClassVar, Literal

from .base import Layer


class Relu(Layer):
    """Rectified linear unit, max(0, x), elementwise."""

    type: Literal["relu"]

    doc_example: ClassVar[str] = "- relu"
    doc_shapes: ClassVar[str] = "the same shape"
    per_step: ClassVar[bool] = True

    def call(self, module, args, shapes):
        return f"torch.relu({args[0]})"
