"""softmax: Softmax: exp(x) / sum(exp(x)) along one dimension."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from .base import Layer, ShapeError


class Softmax(Layer):
    """Softmax: exp(x) / sum(exp(x)) along one dimension."""

    type: Literal["softmax"]
    dim: int = Field(-1, description="Dimension to normalize over, batch excluded (-1 = last).")
    doc_example: ClassVar[str] = "- softmax"

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
        return f"torch.softmax({args[0]}, dim={dim})"
