"""upsample: enlarge feature maps by a scale factor or to a size (nearest or bilinear)."""

from __future__ import annotations

import math
from typing import ClassVar, Literal

from pydantic import Field, PositiveFloat, model_validator

from .base import Layer, Pair, ShapeError, args, fmt_shape, opt, unpair


class Upsample(Layer):
    """Upsampling of (channels, length) or (channels, height, width); give scale_factor or size."""

    type: Literal["upsample"]
    scale_factor: PositiveFloat | None = Field(
        None, description="Multiplier of every spatial size."
    )
    size: Pair | None = Field(None, description="Output [height, width] (2-D inputs).")
    mode: Literal["nearest", "bilinear", "linear"] = Field("nearest", description="Interpolation.")

    doc_example: ClassVar[str] = "- {type: upsample, scale_factor: 2}"
    doc_shapes: ClassVar[str] = "(C, L) or (C, H, W) -> scaled"

    @model_validator(mode="after")
    def _one_of(self):
        if (self.scale_factor is None) == (self.size is None):
            raise ValueError("give exactly one of scale_factor or size")
        return self

    def infer(self, shapes):
        shape = shapes[0]
        if len(shape) not in (2, 3):
            raise ShapeError(
                f"upsample expects (batch, channels, length) or (batch, channels, height, width), got {fmt_shape(shape)}"
            )
        need = {2: "linear", 3: "bilinear"}
        if self.mode != "nearest" and self.mode != need[len(shape)]:
            raise ShapeError(
                f"mode '{self.mode}' does not fit a {len(shape) - 1}-D input; use '{need[len(shape)]}'",
                field="mode",
            )
        if self.size is not None:
            if len(shape) != 3:
                raise ShapeError("size is for 2-D inputs; use scale_factor", field="size")
            return (shape[0], *self.size)
        return (
            shape[0],
            *(
                math.floor(d * self.scale_factor)
                if isinstance(d, int)
                else f"{d} * {self.scale_factor:g}"
                for d in shape[1:]
            ),
        )

    def module(self, shapes):
        scale = self.scale_factor
        if scale is not None and scale == int(scale):
            scale = int(scale)
        size = unpair(self.size) if self.size is not None else None
        return (
            "nn.Upsample("
            + args(
                size=opt(size, None), scale_factor=opt(scale, None), mode=opt(self.mode, "nearest")
            )
            + ")"
        )
