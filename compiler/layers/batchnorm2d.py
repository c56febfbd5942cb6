"""batchnorm2d: batch normalization of (channels, height, width) feature maps."""

from __future__ import annotations

from typing import ClassVar, Literal

from ._norm import BatchNorm


class BatchNorm2d(BatchNorm):
    """Normalizes each channel over batch, height and width; running statistics in eval."""

    type: Literal["batchnorm2d"]
    ranks: ClassVar[tuple] = (3,)
    expected: ClassVar[str] = "(batch, channels, height, width)"
    torch_name: ClassVar[str] = "BatchNorm2d"
    doc_example: ClassVar[str] = "- batchnorm2d"
    doc_shapes: ClassVar[str] = "(C, H, W) -> the same"
    cost_per_element: ClassVar[float] = 2  # scale and shift (statistics fixed in eval)
