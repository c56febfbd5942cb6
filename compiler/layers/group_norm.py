"""group_norm: group normalization (Wu and He 2018): statistics per example, over groups of channels."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, PositiveInt

from .base import Layer, ShapeError, args, fmt_shape, need_int, opt


class GroupNorm(Layer):
    """Normalizes each example over groups of channels (and all positions), so it does not
    depend on the batch: the same in training and evaluation, at batch size 1 too."""

    type: Literal["group_norm"]
    num_groups: PositiveInt = Field(description="Groups the channels split into; divides them.")
    eps: float = Field(1e-5, gt=0, description="Added to the variance for stability.")
    affine: bool = Field(True, description="Learn a scale and shift per channel.")

    doc_example: ClassVar[str] = "- {type: group_norm, num_groups: 2}"
    doc_shapes: ClassVar[str] = "(C, ...) -> the same"
    cost_per_element: ClassVar[float] = 5  # mean, variance, normalize, scale, shift

    def infer(self, shapes):
        shape = shapes[0]
        if len(shape) < 1:
            raise ShapeError(f"group_norm expects (batch, channels, ...), got {fmt_shape(shape)}")
        channels = need_int(shape[0], "group_norm's channels")
        if channels % self.num_groups:
            raise ShapeError(
                f"{self.num_groups} groups do not divide {channels} channels",
                hint=f"use a divisor of {channels}",
                field="num_groups",
            )
        return shape

    def param_count(self, shapes):
        return 2 * shapes[0][0] if self.affine else 0

    def module(self, shapes):
        return (
            "nn.GroupNorm("
            + args(
                self.num_groups,
                shapes[0][0],
                eps=opt(self.eps, 1e-5),
                affine=opt(self.affine, True),
            )
            + ")"
        )
