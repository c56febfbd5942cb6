"""avgpool1d: average pooling over 1-D windows."""

from __future__ import annotations

from typing import ClassVar, Literal

from ._pool import Pool1d


class AvgPool1d(Pool1d):
    """average pooling over 1-D windows; channels are kept."""

    type: Literal["avgpool1d"]
    torch_name: ClassVar[str] = "AvgPool1d"
    doc_example: ClassVar[str] = "- {type: avgpool1d, kernel_size: 2}"
    doc_shapes: ClassVar[str] = "(C, L) -> (C, L')"
