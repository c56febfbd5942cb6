"""recurrent: a custom cell from the spec's `cells:` section, run over a sequence."""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

from pydantic import Field, PositiveInt, PrivateAttr

from ..sanitize import class_name
from ._recurrent import LENGTHS_DOC, lengths_shape
from .base import ReadsLengths, ShapeError, need_int


class Recurrent(ReadsLengths):
    """Runs the equations of `cell` at every step; (batch, time, features) -> per `output`."""

    type: Literal["recurrent"]
    cell: str = Field(description="A cell defined under `cells:`.")
    hidden_size: PositiveInt = Field(description="The size `hidden` in the cell's declarations.")
    output: Literal["sequence", "last", "state"] = Field(
        "sequence",
        description="sequence: every step; last: the final output (many-to-one); "
        "state: every final state, concatenated in declaration order.",
    )
    initial_state: Literal["zeros", "learned"] = Field(
        "zeros", description="The states before the first step: zeros, or trained parameters."
    )
    lengths: str | None = Field(None, description=LENGTHS_DOC)
    # The cell's definition from `cells:`, bound by the compiler on a copy of the layer
    # (compiler/resolve.py); never written in a spec.
    _cell: Any = PrivateAttr(None)

    bidirectional: ClassVar[bool] = False
    recurrent: ClassVar[bool] = True
    doc_example: ClassVar[str] = "- {type: recurrent, cell: my_cell, hidden_size: 32}"
    doc_shapes: ClassVar[str] = "(T, F) -> (T, H), (H) or (all final states)"

    def bind(self, cell) -> Recurrent:
        """A copy of this layer that knows its cell's definition."""
        bound = self.model_copy()
        bound._cell = cell
        return bound

    def _sizes(self, shapes) -> dict:
        features = need_int(shapes[0][-1], "a recurrent layer's input features")
        return {"input": features, "hidden": self.hidden_size}

    def infer(self, shapes):
        lengths_shape(self, shapes)
        shape = shapes[0]
        cell = self._cell
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
        if self.output == "state":
            return (len(cell.state) * self.hidden_size,)
        return (shape[0], self.hidden_size) if self.output == "sequence" else (self.hidden_size,)

    def param_count(self, shapes):
        sizes = self._sizes(shapes)
        learned = len(self._cell.state) * self.hidden_size
        return sum(
            math.prod(sizes.get(d, d) for d in dims) for dims in self._cell.params.values()
        ) + (learned if self.initial_state == "learned" else 0)

    def flops(self, shapes, out):
        """Every step: the cell's matrix products (2 per weight) and about one operation per
        element of each vector its equations make."""
        sizes = self._sizes(shapes)
        products = sum(
            2 * math.prod(sizes.get(d, d) for d in dims) for dims in self._cell.params.values()
        )
        return shapes[0][0] * (products + len(self._cell.equations) * self.hidden_size)

    def _class(self) -> str:
        return class_name(self.cell) + "Cell"

    def helpers(self):
        from ..cells import check, render

        c = self._cell
        params = {p: list(d) for p, d in c.params.items()}
        cell, _ = check(
            self.cell, c.input, dict(c.state), params, c.equations, c.output, c.input_size
        )
        return (render(cell, self._class()), "CellRecurrent")

    def module(self, shapes):
        c = self._cell
        states = list(c.state)
        index = states.index(c.output or states[0])
        return (
            f"CellRecurrent({self._class()}({shapes[0][-1]}, {self.hidden_size}), "
            f"states={len(states)}, output_index={index}, hidden_size={self.hidden_size}"
            + (", learned_init=True)" if self.initial_state == "learned" else ")")
        )

    def call(self, module, args, shapes):
        lengths = f", lengths={args[1]}" if self.lengths else ""
        run = f"{module}({args[0]}{lengths})"
        if self.output == "sequence":
            return f"{run}[0]"
        if self.output == "state":
            return f"torch.cat({run}[1], dim=-1)"
        index = list(self._cell.state).index(self._cell.output or next(iter(self._cell.state)))
        return f"{run}[1][{index}]"

    def state_dims(self, shapes) -> list[tuple[str, tuple]]:
        return [(n, ("batch", self.hidden_size)) for n in self._cell.state]

    def step_line(self, module: str, args: list, out: str, states: list[str]) -> str:
        pack = f"({', '.join(states)},)" if len(states) == 1 else f"({', '.join(states)})"
        return f"{out}, {pack} = {module}({args[0]}, {pack})"

    def start_line(self, module: str, states: list[str], source: str | None) -> str:
        return f"{', '.join(states)}, = {module}.initial_state(batch_size)"

    def initial_state_source(self, module: str) -> str:
        return f"*{module}.initial_state(batch_size)"
