"""identity: Passes its input through unchanged (a named junction for from:)."""

from __future__ import annotations

from typing import ClassVar, Literal

from .base import Layer


class Identity(Layer):
    """Passes its input through unchanged (a named junction for from:)."""

    type: Literal["identity"]

    doc_example: ClassVar[str] = "- identity"
    doc_shapes: ClassVar[str] = "the same (a named junction)"
    cost_per_element: ClassVar[float] = 0  # moves or looks up values, computes nothing
    per_step: ClassVar[bool] = True

    def call(self, module, args, shapes):
        return args[0]
