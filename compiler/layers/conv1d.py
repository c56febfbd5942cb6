"""conv1d: 1-D convolution over (channels, length)."""

from __future__ import annotations

import math
from typing import ClassVar, Literal

from pydantic import Field, PositiveInt

from . import _window as w
from .base import Layer, Padding1d, Single, args, opt


class Conv1d(Layer):
    """1-D convolution; `in_channels` is inferred."""

    type: Literal["conv1d"]
    out_channels: PositiveInt = Field(description="Number of filters.")
    kernel_size: Single = Field(description="Window length.")
    stride: Single = Field(1, description="Step of the window.")
    padding: Padding1d = Field(0, description="Zero padding per side: integer, 'same' or 'valid'.")
    dilation: Single = Field(1, description="Spacing between kernel elements.")
    groups: PositiveInt = Field(1, description="Blocked connections from input to output channels.")
    bias: bool = Field(True, description="Learn an additive bias.")

    doc_example: ClassVar[str] = "- {type: conv1d, out_channels: 16, kernel_size: 3, padding: same}"
    doc_shapes: ClassVar[str] = "(C, L) -> (out_channels, L')"

    def infer(self, shapes):
        channels, spatial = w.spatial_input(shapes[0], 1, "conv1d")
        w.check_groups(channels, self.out_channels, self.groups)
        pad = w.resolve_padding(
            self.padding, (self.kernel_size,), (self.stride,), (self.dilation,), 1
        )
        out = w.window_shape(
            spatial, self.kernel_size, self.stride, pad, self.dilation, 1, self.padding == "same"
        )
        return (self.out_channels, *out)

    def flops(self, shapes, out):
        per_output = 2 * (shapes[0][0] // self.groups) * self.kernel_size + (1 if self.bias else 0)
        return per_output * math.prod(out)

    def param_count(self, shapes):
        weights = self.out_channels * (shapes[0][0] // self.groups) * self.kernel_size
        return weights + (self.out_channels if self.bias else 0)

    def module(self, shapes):
        return (
            "nn.Conv1d("
            + args(
                shapes[0][0],
                self.out_channels,
                kernel_size=self.kernel_size,
                stride=opt(self.stride, 1),
                padding=opt(self.padding, 0),
                dilation=opt(self.dilation, 1),
                groups=opt(self.groups, 1),
                bias=opt(self.bias, True),
            )
            + ")"
        )
