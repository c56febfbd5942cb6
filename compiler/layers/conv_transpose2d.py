"""conv_transpose2d: transposed 2-D convolution (learned upsampling)."""

from __future__ import annotations

import math
from typing import ClassVar, Literal

from pydantic import Field, PositiveInt

from . import _window as w
from .base import Layer, Pair, ShapeError, args, check_window, opt, unpair


class ConvTranspose2d(Layer):
    """Transposed 2-D convolution: out = (in - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1."""

    type: Literal["conv_transpose2d"]
    out_channels: PositiveInt = Field(description="Number of output channels.")
    kernel_size: Pair = Field(description="Window size: an integer or [height, width].")
    stride: Pair = Field((1, 1), description="Upsampling step.")
    padding: Pair = Field(
        (0, 0), description="Implicit padding removed from each side of the output."
    )
    output_padding: Pair = Field((0, 0), description="Extra size added to one side of the output.")
    dilation: Pair = Field((1, 1), description="Spacing between kernel elements.")
    groups: PositiveInt = Field(1, description="Blocked connections from input to output channels.")
    bias: bool = Field(True, description="Learn an additive bias.")

    doc_example: ClassVar[str] = (
        "- {type: conv_transpose2d, out_channels: 16, kernel_size: 4, stride: 2, padding: 1}"
    )
    doc_shapes: ClassVar[str] = "(C, H, W) -> (out_channels, H', W')"

    def infer(self, shapes):
        channels, spatial = w.spatial_input(shapes[0], 2, "conv_transpose2d")
        w.check_groups(channels, self.out_channels, self.groups)
        for k, s, d in zip(self.kernel_size, self.stride, self.dilation):
            check_window(k, s, d)
        for op, s, d in zip(self.output_padding, self.stride, self.dilation):
            if op >= max(s, d):
                raise ShapeError(
                    "output_padding must be smaller than stride or dilation", field="output_padding"
                )
        out = []
        for size, k, s, p, op, d in zip(
            spatial, self.kernel_size, self.stride, self.padding, self.output_padding, self.dilation
        ):
            if isinstance(size, str):
                out.append(f"({size} - 1) * {s} + {d * (k - 1) + op + 1 - 2 * p}")
                continue
            n = (size - 1) * s - 2 * p + d * (k - 1) + op + 1
            if n < 1:
                raise ShapeError(
                    f"output size would be {n}: padding {p} is too large", field="padding"
                )
            out.append(n)
        return (self.out_channels, *out)

    def flops(self, shapes, out):
        kh, kw = self.kernel_size
        scatter = 2 * math.prod(shapes[0]) * (self.out_channels // self.groups) * kh * kw
        return scatter + (math.prod(out) if self.bias else 0)

    def param_count(self, shapes):
        kh, kw = self.kernel_size
        weights = shapes[0][0] * (self.out_channels // self.groups) * kh * kw
        return weights + (self.out_channels if self.bias else 0)

    def module(self, shapes):
        return (
            "nn.ConvTranspose2d("
            + args(
                shapes[0][0],
                self.out_channels,
                kernel_size=unpair(self.kernel_size),
                stride=opt(unpair(self.stride), 1),
                padding=opt(unpair(self.padding), 0),
                output_padding=opt(unpair(self.output_padding), 0),
                groups=opt(self.groups, 1),
                bias=opt(self.bias, True),
                dilation=opt(unpair(self.dilation), 1),
            )
            + ")"
        )
