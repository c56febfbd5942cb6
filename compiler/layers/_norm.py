"""Shared fields of batch normalization layers."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from .base import Layer, args, need_int, need_rank, opt


class BatchNorm(Layer):
    ranks: ClassVar[tuple] = ()
    expected: ClassVar[str] = ""
    torch_name: ClassVar[str] = ""

    eps: float = Field(1e-5, gt=0, description="Added to the variance for stability.")
    momentum: float = Field(
        0.1, gt=0, le=1, description="Weight of the newest batch in the running statistics."
    )
    affine: bool = Field(True, description="Learn a scale and shift per channel.")

    def infer(self, shapes):
        shape = need_rank(shapes, self.ranks, self.type, self.expected)
        need_int(shape[0], f"{self.type}'s channels")
        return shape

    def param_count(self, shapes):
        return 2 * shapes[0][0] if self.affine else 0

    def module(self, shapes):
        return (
            f"nn.{self.torch_name}("
            + args(
                shapes[0][0],
                eps=opt(self.eps, 1e-5),
                momentum=opt(self.momentum, 0.1),
                affine=opt(self.affine, True),
            )
            + ")"
        )
