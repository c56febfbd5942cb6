"""maxpool1d: max pooling over 1-D windows."""

from __future__ import annotations

from typing import ClassVar, Literal

from ._pool import Pool1d


class MaxPool1d(Pool1d):
    """max pooling over 1-D windows; channels are kept."""

    type: Literal["maxpool1d"]
    torch_name: ClassVar[str] = "MaxPool1d"
    doc_example: ClassVar[str] = "- {type: maxpool1d, kernel_size: 2}"
    doc_shapes: ClassVar[str] = "(C, L) -> (C, L')"
