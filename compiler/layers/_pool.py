"""Shared fields and shape rule of max/average pooling over 1 or 2 spatial axes."""

from __future__ import annotations

import math
from typing import ClassVar

from pydantic import Field

from . import _window as w
from .base import Layer, Pair, ShapeError, Single, args, check_window, opt, unpair


class _Pool(Layer):
    torch_name: ClassVar[str] = ""
    nd: ClassVar[int] = 2

    def _stride(self):
        return self.kernel_size if self.stride is None else self.stride

    def infer(self, shapes):
        channels, spatial = w.spatial_input(shapes[0], self.nd, self.type)
        for k, s in zip(w.as_tuple(self.kernel_size, self.nd), w.as_tuple(self._stride(), self.nd)):
            check_window(k, s)
        for k, p in zip(w.as_tuple(self.kernel_size, self.nd), w.as_tuple(self.padding, self.nd)):
            if p > k // 2:
                raise ShapeError(
                    f"padding {p} must be at most half the kernel size {k}", field="padding"
                )
        out = w.window_shape(
            spatial, self.kernel_size, self._stride(), self.padding, 1, self.nd, same=False
        )
        return (channels, *out)

    def flops(self, shapes, out):
        return math.prod(w.as_tuple(self.kernel_size, self.nd)) * math.prod(
            out
        )  # a window per output

    def module(self, shapes):
        k = unpair(self.kernel_size) if self.nd == 2 else self.kernel_size
        s = unpair(self._stride()) if self.nd == 2 else self._stride()
        p = unpair(self.padding) if self.nd == 2 else self.padding
        return f"nn.{self.torch_name}(" + args(k, stride=opt(s, k), padding=opt(p, 0)) + ")"


class Pool2d(_Pool):
    kernel_size: Pair = Field(description="Window size: an integer or [height, width].")
    stride: Pair | None = Field(None, description="Step of the window (default: kernel_size).")
    padding: Pair = Field((0, 0), description="Implicit padding per side.")


class Pool1d(_Pool):
    nd: ClassVar[int] = 1
    kernel_size: Single = Field(description="Window length.")
    stride: Single | None = Field(None, description="Step of the window (default: kernel_size).")
    padding: Single = Field(0, description="Implicit padding per side.")
