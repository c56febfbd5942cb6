"""conv2d: 2-D convolution over (channels, height, width)."""

from __future__ import annotations

import math
from typing import ClassVar, Literal

from pydantic import Field, PositiveInt

from . import _window as w
from .base import Layer, Padding2d, Pair, args, opt, unpair


class Conv2d(Layer):
    """2-D convolution; `in_channels` is inferred."""

    type: Literal["conv2d"]
    out_channels: PositiveInt = Field(description="Number of filters.")
    kernel_size: Pair = Field(description="Window size: an integer or [height, width].")
    stride: Pair = Field((1, 1), description="Step of the window.")
    padding: Padding2d = Field(
        (0, 0), description="Zero padding per side: integer, pair, 'same' or 'valid'."
    )
    dilation: Pair = Field((1, 1), description="Spacing between kernel elements.")
    groups: PositiveInt = Field(1, description="Blocked connections from input to output channels.")
    bias: bool = Field(True, description="Learn an additive bias.")

    doc_example: ClassVar[str] = "- {type: conv2d, out_channels: 20, kernel_size: 5, padding: 2}"
    doc_shapes: ClassVar[str] = "(C, H, W) -> (out_channels, H', W')"

    def _pad(self):
        return w.resolve_padding(self.padding, self.kernel_size, self.stride, self.dilation, 2)

    def infer(self, shapes):
        channels, spatial = w.spatial_input(shapes[0], 2, "conv2d")
        w.check_groups(channels, self.out_channels, self.groups)
        pad = self._pad()
        out = w.window_shape(
            spatial, self.kernel_size, self.stride, pad, self.dilation, 2, self.padding == "same"
        )
        return (self.out_channels, *out)

    def flops(self, shapes, out):
        kh, kw = self.kernel_size
        per_output = 2 * (shapes[0][0] // self.groups) * kh * kw + (1 if self.bias else 0)
        return per_output * math.prod(out)

    def param_count(self, shapes):
        kh, kw = self.kernel_size
        weights = self.out_channels * (shapes[0][0] // self.groups) * kh * kw
        return weights + (self.out_channels if self.bias else 0)

    def module(self, shapes):
        padding = self.padding if isinstance(self.padding, str) else unpair(self.padding)
        return (
            "nn.Conv2d("
            + args(
                shapes[0][0],
                self.out_channels,
                kernel_size=unpair(self.kernel_size),
                stride=opt(unpair(self.stride), 1),
                padding=opt(padding, 0),
                dilation=opt(unpair(self.dilation), 1),
                groups=opt(self.groups, 1),
                bias=opt(self.bias, True),
            )
            + ")"
        )
