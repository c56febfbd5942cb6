"""softmax: Softmax: exp(x) / sum(exp(x)) along one dimension."""

from __future__ import annotations

from typing import ClassVar, Literal

from ._along_dim import AlongDim


class Softmax(AlongDim):
    """Softmax: exp(x) / sum(exp(x)) along one dimension."""

    type: Literal["softmax"]
    doc_example: ClassVar[str] = "- softmax"
    doc_shapes: ClassVar[str] = "the same shape"
    cost_per_element: ClassVar[float] = 3  # exp, sum, divide
    per_step: ClassVar[bool] = True

    def call(self, module, args, shapes):
        return f"torch.softmax({args[0]}, dim={self.torch_dim()})"
