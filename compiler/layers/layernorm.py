"""layernorm: normalization over the last dimension(s) of each example."""

from __future__ import annotations

import math
from typing import ClassVar, Literal

from pydantic import Field, PositiveInt

from .base import Layer, ShapeError, args, fmt_shape, need_int, opt


class Layernorm(Layer):
    """Layer normalization over the trailing `dims` dimensions (default: the last one)."""

    type: Literal["layernorm"]
    dims: PositiveInt = Field(1, description="How many trailing dimensions to normalize over.")
    eps: float = Field(1e-5, gt=0, description="Added to the variance for stability.")
    elementwise_affine: bool = Field(True, description="Learn a scale and shift per element.")

    doc_example: ClassVar[str] = "- layernorm"
    doc_shapes: ClassVar[str] = "the same shape"
    cost_per_element: ClassVar[float] = 5  # mean, variance, normalize, scale, shift
    per_step: ClassVar[bool] = True

    def _normalized(self, shape):
        if self.dims > len(shape):
            raise ShapeError(
                f"layernorm over {self.dims} dims needs at least that many, got {fmt_shape(shape)}",
                field="dims",
            )
        return tuple(
            need_int(d, "layernorm's normalized dims") for d in shape[len(shape) - self.dims :]
        )

    def infer(self, shapes):
        self._normalized(shapes[0])
        return shapes[0]

    def param_count(self, shapes):
        return 2 * math.prod(self._normalized(shapes[0])) if self.elementwise_affine else 0

    def module(self, shapes):
        norm = self._normalized(shapes[0])
        return (
            "nn.LayerNorm("
            + args(
                norm[0] if len(norm) == 1 else list(norm),
                eps=opt(self.eps, 1e-5),
                elementwise_affine=opt(self.elementwise_affine, True),
            )
            + ")"
        )
