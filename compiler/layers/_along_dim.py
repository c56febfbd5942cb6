"""Shared `dim` field and range check of layers that work along one dimension (softmax, log_softmax)."""

from __future__ import annotations

from pydantic import Field

from .base import Layer, ShapeError


class AlongDim(Layer):
    dim: int = Field(-1, description="Dimension to normalize over, batch excluded (-1 = last).")

    def infer(self, shapes):
        rank = len(shapes[0])
        if not -rank <= self.dim < rank:
            raise ShapeError(
                f"dim {self.dim} is out of range for an input of rank {rank} (batch excluded)",
                field="dim",
            )
        return shapes[0]

    def torch_dim(self) -> int:
        """The same dim counted with the batch, as torch expects it."""
        return self.dim if self.dim < 0 else self.dim + 1
