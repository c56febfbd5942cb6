"""transformer_decoder_layer: causal self-attention, attention over a memory, feed-forward."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from ._transformer import TransformerBase


class TransformerDecoderLayer(TransformerBase):
    """from: [x, memory]: (batch, T, D) and (batch, S, Dm) -> (batch, T, D); `lengths` pads the memory."""

    type: Literal["transformer_decoder_layer"]
    causal: bool = Field(True, description="Self-attention sees earlier target positions only.")

    cross: ClassVar[bool] = True
    cached_attention: ClassVar[bool] = True
    doc_example: ClassVar[str] = (
        "- {type: transformer_decoder_layer, num_heads: 2, from: [x, memory]}"
    )
    doc_shapes: ClassVar[str] = "(T, D), (S, Dm) -> (T, D)"

    def call(self, module, args, shapes):
        lengths = args[-1] if self.lengths else "None"
        return f"{module}({args[0]}, {args[1]}, causal={self.causal}, memory_lengths={lengths})"

    def state_dims(self, shapes) -> list[tuple[str, tuple]]:
        """The key/value cache of the self-attention: (batch, heads, past, head) each."""
        dims = ("batch", self.num_heads, "past", shapes[0][-1] // self.num_heads)
        return [("keys", dims), ("values", dims)]

    def memory_dims(self, shapes) -> tuple:
        """The memory's keys or values, computed once per source: (batch, heads, S, head)."""
        return ("batch", self.num_heads, shapes[1][0], shapes[0][-1] // self.num_heads)

    def step_line(self, module: str, args: list, out: str, states: list[str]) -> str:
        """states: the key/value cache, then the memory's keys and values."""
        lengths = args[-1] if self.lengths else "None"
        keys, values, memory_keys, memory_values = states
        return f"{out}, {keys}, {values} = {module}.step({args[0]}, {keys}, {values}, {memory_keys}, {memory_values}, {lengths})"

    def start_line(self, module: str, states: list[str], source: str | None) -> str:
        return f"{', '.join(states)} = {module}.empty_cache(batch_size)"
