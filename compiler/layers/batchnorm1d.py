"""batchnorm1d: batch normalization of (features) or (channels, length) inputs."""

from __future__ import annotations

from typing import ClassVar, Literal

from ._norm import BatchNorm


class BatchNorm1d(BatchNorm):
    """Normalizes each feature/channel over the batch (and length); running statistics in eval."""

    type: Literal["batchnorm1d"]
    ranks: ClassVar[tuple] = (1, 2)
    expected: ClassVar[str] = "(batch, features) or (batch, channels, length)"
    torch_name: ClassVar[str] = "BatchNorm1d"
    doc_example: ClassVar[str] = "- batchnorm1d"
    doc_shapes: ClassVar[str] = "(C) or (C, L) -> the same"
    cost_per_element: ClassVar[float] = 2  # scale and shift (statistics fixed in eval)
