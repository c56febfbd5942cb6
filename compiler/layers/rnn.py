"""rnn: the simple (Elman) recurrent layer, tanh or relu; `init: identity` makes an IRNN."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from ._recurrent import RecurrentBase


class Rnn(RecurrentBase):
    """h_t = act(W_ih x_t + W_hh h_{t-1} + b) over (batch, time, features)."""

    type: Literal["rnn"]
    nonlinearity: Literal["tanh", "relu"] = Field("tanh", description="The activation.")
    init: Literal["default", "orthogonal", "identity"] = Field(
        "default",
        description="identity: recurrent weights = I, biases 0 (IRNN; use with relu); "
        "orthogonal: recurrent weights start orthogonal.",
    )
    exportable: ClassVar[str] = "ExportableRNN"
    doc_example: ClassVar[str] = (
        "- {type: rnn, hidden_size: 32, nonlinearity: relu, init: identity}"
    )
    doc_shapes: ClassVar[str] = "(T, F) -> (T, H·dirs), (H·dirs) or (all final states)"

    def torch_args(self, shapes) -> str:
        source = super().torch_args(shapes)
        return source + (", nonlinearity='relu'" if self.nonlinearity == "relu" else "")

    def helpers(self):
        if self.init == "identity":
            return ("ExportableRecurrent", "identity_recurrent")
        return super().helpers()

    def module(self, shapes):
        if self.init == "identity":
            return f"identity_recurrent({self.exportable}({self.torch_args(shapes)}))"
        return super().module(shapes)
