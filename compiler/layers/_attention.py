"""What the attention layers share: reading a query, an optional memory and optional key lengths."""

from __future__ import annotations

from .base import Layer, ShapeError, fmt_shape, need_int, without_lengths


def split_inputs(layer: Layer, shapes) -> tuple:
    """(query shape, memory shape, has lengths) from `from:` [query, (memory), (lengths)]."""
    lengths = bool(layer.side_inputs())
    shapes = without_lengths(layer, shapes)
    if len(shapes) not in (1, 2):
        raise ShapeError(
            f"{layer.type} reads a sequence (self-attention) or a query and a memory "
            f"(from: [query, memory]), got {len(shapes)} inputs",
            field="from",
        )
    for s in shapes:
        if len(s) != 2:
            raise ShapeError(
                f"{layer.type} attends over sequences (batch, time, features), got {fmt_shape(s)}"
            )
        need_int(s[-1], f"{layer.type}'s features")
    query = shapes[0]
    memory = shapes[1] if len(shapes) == 2 else shapes[0]
    return query, memory, lengths


def attention_args(args: list, cross: bool, lengths: bool) -> tuple[str, str, str]:
    """(query, memory, lengths) source for the call."""
    query = args[0]
    memory = args[1] if cross else args[0]
    return query, memory, (args[-1] if lengths else "None")
