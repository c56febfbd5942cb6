"""log_softmax: Log-softmax: log of the softmax, computed stably."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from .base import Layer, ShapeError


class LogSoftmax(Layer):
    """Log-softmax: log of the softmax, computed stably."""

    type: Literal["log_softmax"]
    dim: int = Field(-1, description="Dimension to normalize over, batch excluded (-1 = last).")
    doc_example: ClassVar[str] = "- log_softmax"

    def infer(self, shapes):
        rank = len(shapes[0])
        if not -rank <= self.dim < rank:
            raise ShapeError(
                f"dim {self.dim} is out of range for an input of rank {rank} (batch excluded)",
                field="dim",
            )
        return shapes[0]

    def call(self, module, args, shapes):
        dim = self.dim if self.dim < 0 else self.dim + 1
        return f"torch.log_softmax({args[0]}, dim={dim})"
