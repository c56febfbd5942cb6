"""What rnn, lstm and gru share: sizes, stacking, direction, padding, and which output they give."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, NonNegativeFloat, PositiveInt

from .base import Layer, ShapeError, args, fmt_shape, need_int, opt, without_lengths

OUTPUT_DOC = (
    "sequence: every step (many-to-many); last: the top layer's final state (many-to-one); "
    "state: every layer's and direction's final state, concatenated (h, then c for lstm)."
)
LENGTHS_DOC = (
    "An int64 input of shape [] holding each sequence's length; later positions are padding "
    "and never change the result."
)


def lengths_shape(layer: Layer, shapes) -> None:
    """A recurrent layer reads its sequence, plus the lengths input when `lengths:` is set."""
    shapes = without_lengths(layer, shapes)
    if len(shapes) != 1:
        raise ShapeError(f"{layer.type} reads one sequence, got {len(shapes)} inputs")
    if len(shapes[0]) != 2:
        raise ShapeError(
            f"{layer.type} expects a sequence (batch, time, features), got {fmt_shape(shapes[0])}",
            hint="declare the input as [time, features] (an embedding gives that from token ids)",
        )


class RecurrentBase(Layer):
    hidden_size: PositiveInt = Field(description="Units per direction and layer.")
    num_layers: PositiveInt = Field(1, description="Stacked layers.")
    bidirectional: bool = Field(False, description="Also run right to left; outputs concatenate.")
    dropout: NonNegativeFloat = Field(0.0, lt=1.0, description="Dropout between stacked layers.")
    output: Literal["sequence", "last", "state"] = Field("sequence", description=OUTPUT_DOC)
    initial_state: Literal["zeros", "learned"] = Field(
        "zeros", description="The state before the first step: zeros, or trained parameters."
    )
    init: Literal["default", "orthogonal"] = Field(
        "default", description="orthogonal: recurrent weight matrices start orthogonal."
    )
    lengths: str | None = Field(None, description=LENGTHS_DOC)

    gates: ClassVar[int] = 1  # weight blocks per unit: lstm 4, gru 3, rnn 1
    exportable: ClassVar[str] = ""  # the helper class that runs it (layers/_helpers.py)
    states: ClassVar[int] = 1  # state tensors: lstm 2 (h, c), others 1

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    def infer(self, shapes):
        lengths_shape(self, shapes)
        need_int(shapes[0][-1], f"{self.type}'s input features")
        width = self.hidden_size * self.directions
        if self.output == "sequence":
            return (shapes[0][0], width)
        if self.output == "state":
            return (self.states * self.num_layers * width,)
        return (width,)

    def param_count(self, shapes):
        h, dirs, g = self.hidden_size, self.directions, self.gates
        total, width = 0, shapes[0][-1]
        for _ in range(self.num_layers):
            total += dirs * g * h * (width + h + 2)
            width = h * dirs
        if self.initial_state == "learned":
            total += self.states * self.num_layers * dirs * h
        return total

    def torch_args(self, shapes) -> str:
        return args(
            shapes[0][-1],
            self.hidden_size,
            num_layers=opt(self.num_layers, 1),
            dropout=opt(self.dropout, 0.0),
            bidirectional=opt(self.bidirectional, False),
            batch_first=True,
            learned_init=opt(self.initial_state == "learned", False),
        )

    def helpers(self):
        return ("ExportableRecurrent",) + (
            ("orthogonal_recurrent",) if self.init == "orthogonal" else ()
        )

    def module(self, shapes):
        source = f"{self.exportable}({self.torch_args(shapes)})"
        return f"orthogonal_recurrent({source})" if self.init == "orthogonal" else source

    def call(self, module, args, shapes):
        lengths = f", lengths={args[1]}" if self.lengths else ""
        run = f"{module}({args[0]}{lengths})"
        if self.output == "sequence":
            return f"{run}[0]"
        if self.output == "state":  # (layers * directions, batch, hidden) per state -> (batch, all)
            parts = f"{run}[1]" if self.states > 1 else f"({run}[1],)"
            return f"torch.cat([s.transpose(0, 1).flatten(1) for s in {parts}], dim=-1)"
        h_n = f"{run}[1][0]" if self.states > 1 else f"{run}[1]"
        last = "[-2:]" if self.bidirectional else "[-1:]"  # the top layer's h_n, per direction
        return f"torch.cat(tuple({h_n}{last}), dim=-1)"

    def state_dims(self) -> list[tuple[str, tuple]]:
        """The state a step carries: (name, dims) per tensor, in torch's layout."""
        dims = (self.num_layers * self.directions, "batch", self.hidden_size)
        return [(n, dims) for n in ("h", "c")[: self.states]]

    def step_line(self, module: str, arg: str, out: str, states: list[str]) -> str:
        """`out, state = module(arg, state)`: one call that carries the state (the step graph)."""
        pack = f"({', '.join(states)})" if self.states > 1 else states[0]
        return f"{out}, {pack} = {module}({arg}, {pack})"

    def initial_state_source(self, module: str) -> str:
        return (
            f"*{module}.initial_state(batch_size)"
            if self.states > 1
            else f"{module}.initial_state(batch_size)"
        )
