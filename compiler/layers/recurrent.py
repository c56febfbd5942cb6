"""recurrent: a custom cell from the spec's `cells:` section, run over a sequence."""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

from pydantic import Field, PositiveInt

from ..sanitize import class_name
from ._helpers import CELL_RECURRENT
from .base import Layer, ShapeError, fmt_shape, need_int


class Recurrent(Layer):
    """Runs the equations of `cell` at every step; (batch, time, features) -> per `output`."""

    type: Literal["recurrent"]
    cell: str = Field(description="A cell defined under `cells:`.")
    hidden_size: PositiveInt = Field(description="The size `hidden` in the cell's declarations.")
    output: Literal["sequence", "last"] = Field(
        "sequence", description="sequence: every step; last: the final output (many-to-one)."
    )
    definition: Any = Field(None, exclude=True, description="Set by the compiler from `cells:`.")

    doc_example: ClassVar[str] = "- {type: recurrent, cell: my_cell, hidden_size: 32}"

    def _sizes(self, shapes) -> dict:
        features = need_int(shapes[0][-1], "a recurrent layer's input features")
        return {"input": features, "hidden": self.hidden_size}

    def infer(self, shapes):
        shape = shapes[0]
        if len(shape) != 2:
            raise ShapeError(
                f"recurrent expects a sequence (batch, time, features), got {fmt_shape(shape)}",
                hint="declare the input as [time, features]",
            )
        cell = self.definition
        sizes = self._sizes(shapes)
        if cell.input_size == "hidden" and sizes["input"] != self.hidden_size:
            raise ShapeError(
                f"cell '{self.cell}' takes inputs of the hidden size {self.hidden_size}, got {sizes['input']} features",
                hint="add a linear layer before it, or set hidden_size to the feature count",
                field="hidden_size",
            )
        out = cell.output or next(iter(cell.state))
        if out not in cell.state:
            raise ShapeError(
                f"cell '{self.cell}': its output must be one of its states", field="cell"
            )
        if any(size != "hidden" for size in cell.state.values()):
            raise ShapeError(
                f"cell '{self.cell}': a recurrent layer needs every state of the hidden size",
                field="cell",
            )
        return (shape[0], self.hidden_size) if self.output == "sequence" else (self.hidden_size,)

    def param_count(self, shapes):
        sizes = self._sizes(shapes)
        return sum(
            math.prod(sizes.get(d, d) for d in dims) for dims in self.definition.params.values()
        )

    def _class(self) -> str:
        return class_name(self.cell) + "Cell"

    def helpers(self):
        from ..cells import check, render

        c = self.definition
        params = {p: list(d) for p, d in c.params.items()}
        cell, _ = check(
            self.cell, c.input, dict(c.state), params, c.equations, c.output, c.input_size
        )
        return (render(cell, self._class()), CELL_RECURRENT)

    def module(self, shapes):
        c = self.definition
        states = list(c.state)
        index = states.index(c.output or states[0])
        return (
            f"CellRecurrent({self._class()}({shapes[0][-1]}, {self.hidden_size}), "
            f"states={len(states)}, output_index={index}, hidden_size={self.hidden_size}, "
            f"last={self.output == 'last'})"
        )
