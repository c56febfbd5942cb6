"""log_softmax: Log-softmax: log of the softmax, computed stably."""

from __future__ import annotations

from typing import ClassVar, Literal

from ._along_dim import AlongDim


class LogSoftmax(AlongDim):
    """Log-softmax: log of the softmax, computed stably."""

    type: Literal["log_softmax"]
    doc_example: ClassVar[str] = "- log_softmax"
    doc_shapes: ClassVar[str] = "the same shape"
    cost_per_element: ClassVar[float] = 3  # exp, sum, log-subtract
    per_step: ClassVar[bool] = True

    def call(self, module, args, shapes):
        return f"torch.log_softmax({args[0]}, dim={self.torch_dim()})"
