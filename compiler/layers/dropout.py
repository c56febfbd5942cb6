"""dropout: zeroes each element with probability p in training, identity in eval."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from .base import Layer, args


class Dropout(Layer):
    """Dropout (inverted: kept elements are scaled by 1 / (1 - p) in training)."""

    type: Literal["dropout"]
    p: float = Field(0.5, ge=0.0, lt=1.0, description="Probability of zeroing an element.")

    doc_example: ClassVar[str] = "- {type: dropout, p: 0.25}"
    doc_shapes: ClassVar[str] = "the same shape"
    cost_per_element: ClassVar[float] = 0  # moves or looks up values, computes nothing
    per_step: ClassVar[bool] = True

    def module(self, shapes):
        return "nn.Dropout(" + args(self.p) + ")"
