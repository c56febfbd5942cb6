"""transformer_encoder_layer: self-attention and a feed-forward block, each residual and normed."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from ._transformer import TransformerBase


class TransformerEncoderLayer(TransformerBase):
    """(batch, time, D) -> (batch, time, D); stack with `repeat:`."""

    type: Literal["transformer_encoder_layer"]
    causal: bool = Field(
        False, description="Each position attends to itself and earlier ones only."
    )

    arity: ClassVar[str] = "one"
    doc_example: ClassVar[str] = "- {type: transformer_encoder_layer, num_heads: 2, repeat: 2}"
    doc_shapes: ClassVar[str] = "(T, D) -> (T, D)"

    def call(self, module, args, shapes):
        lengths = args[-1] if self.lengths else "None"
        return f"{module}({args[0]}, causal={self.causal}, lengths={lengths})"
