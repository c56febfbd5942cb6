"""reshape: give each example a new shape (batch kept); one entry may be -1."""

from __future__ import annotations

import math
from typing import ClassVar, Literal

from pydantic import Field, field_validator

from .base import Layer, ShapeError, fmt_shape, need_int


class Reshape(Layer):
    """Reshape each example; `shape` excludes the batch dimension."""

    type: Literal["reshape"]
    shape: list[int] = Field(
        min_length=1, description="New shape without the batch; at most one -1."
    )

    doc_example: ClassVar[str] = "- {type: reshape, shape: [1, 8, 8]}"
    doc_shapes: ClassVar[str] = "(d1, d2, ...) -> `shape`"
    cost_per_element: ClassVar[float] = 0  # moves or looks up values, computes nothing

    @field_validator("shape")
    @classmethod
    def _valid(cls, v):
        if sum(d == -1 for d in v) > 1 or any(d == 0 or d < -1 for d in v):
            raise ValueError("entries must be positive, with at most one -1")
        return v

    def infer(self, shapes):
        total = math.prod(need_int(d, "reshape's input dims") for d in shapes[0])
        known = math.prod(d for d in self.shape if d != -1)
        if -1 in self.shape:
            if total % known:
                raise ShapeError(
                    f"cannot reshape {fmt_shape(shapes[0])} ({total} values) to {self.shape}",
                    field="shape",
                )
            return tuple(total // known if d == -1 else d for d in self.shape)
        if known != total:
            raise ShapeError(
                f"cannot reshape {fmt_shape(shapes[0])} ({total} values) to {self.shape} ({known} values)",
                field="shape",
            )
        return tuple(self.shape)

    def call(self, module, args, shapes):
        dims = ", ".join(str(d) for d in self.infer(shapes))
        return f"{args[0]}.reshape(-1, {dims})"
