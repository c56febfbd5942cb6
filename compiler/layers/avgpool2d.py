"""avgpool2d: average pooling over 2-D windows."""

from __future__ import annotations

from typing import ClassVar, Literal

from ._pool import Pool2d


class AvgPool2d(Pool2d):
    """average pooling over 2-D windows; channels are kept."""

    type: Literal["avgpool2d"]
    torch_name: ClassVar[str] = "AvgPool2d"
    doc_example: ClassVar[str] = "- {type: avgpool2d, kernel_size: 2}"
    doc_shapes: ClassVar[str] = "(C, H, W) -> (C, H', W')"
