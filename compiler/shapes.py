"""Shape inference: every layer's output shape and parameter count, before any tensor exists.

Shapes exclude the batch. A dimension is an int or the name/expression of a dynamic dim.
"""

from __future__ import annotations

from dataclasses import dataclass

from .diagnostics import SpecError
from .expand import block_note
from .layers.base import ShapeError, fmt_shape
from .spec import Parsed


@dataclass(frozen=True)
class Inferred:
    order: tuple[int, ...]
    in_shapes: dict[int, tuple]  # layer index -> input shapes
    out_shapes: dict[str, tuple]  # layer or input name -> output shape
    params: dict[int, int]

    @property
    def total_params(self) -> int:
        return sum(self.params.values())


def infer(parsed: Parsed, order: list[int]) -> Inferred:
    src, origins = parsed.source, parsed.origins
    shapes: dict[str, tuple] = {name: tuple(inp.shape) for name, inp in parsed.inputs.items()}
    producer = {name: f"input '{name}'" for name in parsed.inputs}
    in_shapes, params, errors = {}, {}, []
    for i in order:
        layer = parsed.layers[i]
        refs = layer.from_ or []
        if any(r not in shapes for r in refs):
            continue  # an earlier error already explains it
        got = [shapes[r] for r in refs]
        lengths = len(layer.side_inputs())  # read besides `from:` (lengths, a state source)
        if layer.arity == "one" and len(got) != 1 + lengths:
            errors.append(
                src.error(
                    origins[i].path + ("from",),
                    f"{layer.type} reads exactly one input, got {len(got) - lengths}",
                )
            )
            continue
        try:
            out = layer.infer(got)
            count = layer.param_count(got)
        except ShapeError as e:
            where = origins[i].path + ((e.field,) if e.field else ())
            context = "; ".join(f"{producer[r]} gives {fmt_shape(shapes[r])}" for r in refs)
            hint = "; ".join(filter(None, (e.hint, context, block_note(src, origins[i]))))
            errors.append(src.error(where, f"{layer.name}: {e.message}", hint))
            continue
        in_shapes[i] = tuple(got)
        shapes[layer.name] = tuple(out)
        producer[layer.name] = f"{layer.type} '{layer.name}'"
        params[i] = count
    if errors:
        raise SpecError(errors)
    return Inferred(tuple(order), in_shapes, shapes, params)
