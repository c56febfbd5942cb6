"""What rnn, lstm and gru share: sizes, stacking, direction, padding, and which output they give."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, PositiveInt, PrivateAttr

from .base import Layer, ReadsLengths, ShapeError, args, fmt_shape, need_int, opt, without_lengths

OUTPUT_DOC = (
    "sequence: every step (many-to-many); last: the top layer's final state (many-to-one); "
    "state: every layer's and direction's final state, concatenated (h, then c for lstm)."
)
LENGTHS_DOC = (
    "An int64 input of shape [] holding each sequence's length; later positions are padding "
    "and never change the result."
)


class StateFrom(BaseModel):
    """`initial_state: {from: LAYER}`: a seq2seq decoder starts from an encoder layer's state."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)
    from_: str = Field(
        alias="from",
        description="An encoder layer: a recurrent layer (its final state) or a vector "
        "(batch, features), e.g. a CNN's code. A bridge (linear + tanh) maps it to this layer's "
        "state unless the sizes already match.",
    )


def own_inputs(layer: Layer, shapes) -> list:
    """The inputs a layer reads through `from:`, without its `lengths:` and state source."""
    if isinstance(layer, RecurrentBase) and layer.state_from:
        shapes = shapes[:-1]  # the state source is read last
    return without_lengths(layer, shapes)


def lengths_shape(layer: Layer, shapes) -> None:
    """A recurrent layer reads its sequence, plus the lengths input when `lengths:` is set."""
    shapes = own_inputs(layer, shapes)
    if len(shapes) != 1:
        raise ShapeError(f"{layer.type} reads one sequence, got {len(shapes)} inputs")
    if len(shapes[0]) != 2:
        raise ShapeError(
            f"{layer.type} expects a sequence (batch, time, features), got {fmt_shape(shapes[0])}",
            hint="declare the input as [time, features] (an embedding gives that from token ids)",
        )


class RecurrentBase(ReadsLengths):
    hidden_size: PositiveInt = Field(description="Units per direction and layer.")
    num_layers: PositiveInt = Field(1, description="Stacked layers.")
    bidirectional: bool = Field(False, description="Also run right to left; outputs concatenate.")
    dropout: NonNegativeFloat = Field(0.0, lt=1.0, description="Dropout between stacked layers.")
    output: Literal["sequence", "last", "state"] = Field("sequence", description=OUTPUT_DOC)
    initial_state: Literal["zeros", "learned"] | StateFrom = Field(
        "zeros",
        description="The state before the first step: zeros, trained parameters, or (a seq2seq "
        "decoder) {from: ENCODER_LAYER}.",
    )
    init: Literal["default", "orthogonal"] = Field(
        "default", description="orthogonal: recurrent weight matrices start orthogonal."
    )
    lengths: str | None = Field(None, description=LENGTHS_DOC)

    # What the layer named by initial_state: {from: ...} gives, bound by the seq2seq task on a
    # copy of this layer (`bind_state_source`): {"recurrent", "type", "num_layers", "hidden_size",
    # "directions"}. None when the layer starts from zeros or learned parameters.
    _state_source: dict | None = PrivateAttr(None)

    recurrent: ClassVar[bool] = True
    torch_recurrent: ClassVar[bool] = True
    gates: ClassVar[int] = 1  # weight blocks per unit: lstm 4, gru 3, rnn 1
    exportable: ClassVar[str] = ""  # the helper class that runs it (layers/_helpers/)
    states: ClassVar[int] = 1  # state tensors: lstm 2 (h, c), others 1

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def state_from(self) -> str | None:
        return self.initial_state.from_ if isinstance(self.initial_state, StateFrom) else None

    def bind_state_source(self, source: dict) -> RecurrentBase:
        """A copy of this layer that knows what its state source gives."""
        bound = self.model_copy()
        bound._state_source = source
        return bound

    def side_inputs(self):
        return tuple(n for n in (self.lengths, self.state_from) if n)  # in the order read

    @property
    def bridged(self) -> bool:
        """A bridge maps the source's state to this layer's, unless it already fits as it is
        (same kind of layer, same stack and size, one direction)."""
        src = self._state_source
        if src is None:
            return False
        same = src["recurrent"] and (src["type"], src["num_layers"], src["hidden_size"]) == (
            self.type,
            self.num_layers,
            self.hidden_size,
        )
        return not (same and src["directions"] == 1 and not self.bidirectional)

    def infer(self, shapes):
        lengths_shape(self, shapes)
        need_int(shapes[0][-1], f"{self.type}'s input features")
        src = self._state_source
        if src is not None and not src["recurrent"] and len(shapes[-1]) != 1:
            raise ShapeError(
                f"initial_state reads a vector (batch, features) or a recurrent layer's state; "
                f"'{self.state_from}' gives {fmt_shape(shapes[-1])}",
                hint="flatten or pool it first, or name a recurrent encoder layer",
                field="initial_state",
            )
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
        if self.bridged:
            width = self._bridge_in(shapes)
            total += self.states * (width + 1) * self.num_layers * dirs * h
        return total

    def flops(self, shapes, out):
        """Every step of every layer and direction: the gates' matrix products and bias adds."""
        steps, width, h = shapes[0][0], shapes[0][-1], self.hidden_size
        total = 0
        for _ in range(self.num_layers):
            total += self.directions * self.gates * h * (2 * (width + h) + 2)
            width = h * self.directions
        return steps * total

    def _bridge_in(self, shapes) -> int:
        src = self._state_source
        return src["hidden_size"] * src["directions"] if src["recurrent"] else shapes[-1][0]

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
        return (
            ("ExportableRecurrent",)
            + (("orthogonal_recurrent",) if self.init == "orthogonal" else ())
            + (("Bridge",) if self.bridged else ())
        )

    def module(self, shapes):
        source = f"{self.exportable}({self.torch_args(shapes)})"
        if self.init == "orthogonal":
            source = f"orthogonal_recurrent({source})"
        if self.bridged:
            src = self._state_source
            source = f"with_bridge({source}, {args(self._bridge_in(shapes), src['directions'] if src['recurrent'] else 1)})"
        return source

    def start_state(self, module: str, source: str) -> str:
        """The decoder's first state from its source's (a final state or a vector)."""
        return f"{module}.bridge({source})" if self.bridged else source

    def _run(self, module, args) -> str:
        lengths = f", lengths={args[1]}" if self.lengths else ""
        start = f", {self.start_state(module, args[-1])}" if self.state_from else ""
        return f"{module}({args[0]}{start}{lengths})"

    def _from_state(self, state: str) -> str:
        """output last / state, from the final state `state` (h, or (h, c) for lstm)."""
        if self.output == "state":  # (layers * directions, batch, hidden) per state -> (batch, all)
            parts = state if self.states > 1 else f"({state},)"
            return f"torch.cat([s.transpose(0, 1).flatten(1) for s in {parts}], dim=-1)"
        h_n = f"{state}[0]" if self.states > 1 else state
        last = "[-2:]" if self.bidirectional else "[-1:]"  # the top layer's h_n, per direction
        return f"torch.cat(tuple({h_n}{last}), dim=-1)"

    def call(self, module, args, shapes):
        run = self._run(module, args)
        return f"{run}[0]" if self.output == "sequence" else self._from_state(f"{run}[1]")

    def final_line(self, module: str, args: list, var: str, final: str) -> str:
        """The output and the final state from one run, for a decoder that starts from it."""
        run = self._run(module, args)
        if self.output == "sequence":
            return f"{var}, {final} = {run}"
        return f"{final} = {run}[1]\n        {var} = {self._from_state(final)}"

    def state_dims(self, shapes) -> list[tuple[str, tuple]]:
        """The state a step carries: (name, dims) per tensor, in torch's layout."""
        dims = (self.num_layers * self.directions, "batch", self.hidden_size)
        return [(n, dims) for n in ("h", "c")[: self.states]]

    def step_line(self, module: str, args: list, out: str, states: list[str]) -> str:
        """`out, state = module(x, state)`: one call that carries the state (the step graph)."""
        pack = f"({', '.join(states)})" if self.states > 1 else states[0]
        return f"{out}, {pack} = {module}({args[0]}, {pack})"

    def start_line(self, module: str, states: list[str], source: str | None) -> str:
        """A seq2seq decoder's first state, in encode(): from the encoder's, or the usual one."""
        start = (
            self.start_state(module, source) if source else f"{module}.initial_state(batch_size)"
        )
        return f"{', '.join(states)} = {start}"

    def initial_state_source(self, module: str) -> str:
        return (
            f"*{module}.initial_state(batch_size)"
            if self.states > 1
            else f"{module}.initial_state(batch_size)"
        )
