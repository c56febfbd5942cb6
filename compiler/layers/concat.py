"""concat: join two or more inputs along one dimension (default: channels/features)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from .base import Layer, ShapeError, fmt_shape


class Concat(Layer):
    """Concatenation of the layers named in `from:`; `dim` counts from the first non-batch dim."""

    type: Literal["concat"]
    dim: int = Field(
        0, description="Dimension to join along, batch excluded (0 = channels/features, -1 = last)."
    )
    arity: ClassVar[str] = "many"
    doc_example: ClassVar[str] = "- {type: concat, from: [left, right]}"
    doc_shapes: ClassVar[str] = "inputs joined along `dim`"
    cost_per_element: ClassVar[float] = 0  # moves or looks up values, computes nothing
    per_step: ClassVar[bool] = True

    def infer(self, shapes):
        if len(shapes) < 2:
            raise ShapeError("concat needs at least two inputs in 'from:'", field="from")
        rank = len(shapes[0])
        if not -rank <= self.dim < rank:
            raise ShapeError(
                f"dim {self.dim} is out of range for inputs of rank {rank} (batch excluded)",
                field="dim",
            )
        d = self.dim % rank
        ok = all(
            len(s) == rank and all(a == b for i, (a, b) in enumerate(zip(s, shapes[0])) if i != d)
            for s in shapes
        )
        if not ok:
            raise ShapeError(
                f"concat along dim {self.dim} needs inputs equal in every other dim, got "
                + " and ".join(fmt_shape(s) for s in shapes)
            )
        joined = [s[d] for s in shapes]
        size = (
            sum(joined) if all(isinstance(j, int) for j in joined) else " + ".join(map(str, joined))
        )
        out = list(shapes[0])
        out[d] = size
        return tuple(out)

    def call(self, module, args, shapes):
        rank = len(shapes[0])
        return f"torch.cat([{', '.join(args)}], dim={self.dim % rank + 1})"
