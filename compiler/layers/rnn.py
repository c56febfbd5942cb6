"""rnn: the simple (Elman) recurrent layer, tanh or relu; `init: identity` makes an IRNN."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from ._recurrent import RecurrentBase


class Rnn(RecurrentBase):
    """h_t = act(W_ih x_t + W_hh h_{t-1} + b) over (batch, time, features)."""

    type: Literal["rnn"]
    nonlinearity: Literal["tanh", "relu"] = Field("tanh", description="The activation.")
    init: Literal["default", "identity"] = Field(
        "default", description="identity: recurrent weights = I, biases 0 (IRNN; use with relu)."
    )
    exportable: ClassVar[str] = "ExportableRNN"
    doc_example: ClassVar[str] = (
        "- {type: rnn, hidden_size: 32, nonlinearity: relu, init: identity}"
    )

    def helpers(self):
        return super().helpers() + (("identity_recurrent",) if self.init == "identity" else ())

    def module(self, shapes):
        source = super().module(shapes)
        if self.nonlinearity == "relu":
            source = source[:-1] + ", nonlinearity='relu')"
        return f"identity_recurrent({source})" if self.init == "identity" else source
