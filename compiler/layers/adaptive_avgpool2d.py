"""adaptive_avgpool2d: average pooling to a fixed output size, whatever the input size."""

from __future__ import annotations

import math
from typing import ClassVar, Literal

from pydantic import Field

from . import _window as w
from .base import Layer, Pair, args, unpair


class AdaptiveAvgPool2d(Layer):
    """Average pooling to `output_size`; the usual way to end a CNN that accepts any image size."""

    type: Literal["adaptive_avgpool2d"]
    output_size: Pair = Field(
        (1, 1), description="Output [height, width] (an integer for a square)."
    )

    doc_example: ClassVar[str] = "- {type: adaptive_avgpool2d, output_size: 1}"
    doc_shapes: ClassVar[str] = "(C, H, W) -> (C, oh, ow)"

    def infer(self, shapes):
        channels, _ = w.spatial_input(shapes[0], 2, "adaptive_avgpool2d")
        return (channels, *self.output_size)

    def module(self, shapes):
        return "nn.AdaptiveAvgPool2d(" + args(unpair(self.output_size)) + ")"

    def flops(self, shapes, out):
        return math.prod(shapes[0])  # every input element is summed once
