"""maxpool2d: max pooling over 2-D windows."""

from __future__ import annotations

from typing import ClassVar, Literal

from ._pool import Pool2d


class MaxPool2d(Pool2d):
    """max pooling over 2-D windows; channels are kept."""

    type: Literal["maxpool2d"]
    torch_name: ClassVar[str] = "MaxPool2d"
    doc_example: ClassVar[str] = "- {type: maxpool2d, kernel_size: 2, stride: 2}"
    doc_shapes: ClassVar[str] = "(C, H, W) -> (C, H', W')"
