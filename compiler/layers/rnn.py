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
    gates: ClassVar[int] = 1
    doc_example: ClassVar[str] = (
        "- {type: rnn, hidden_size: 32, nonlinearity: relu, init: identity}"
    )

    def helpers(self):
        return ("ExportableRecurrent",) + (
            ("identity_recurrent",) if self.init == "identity" else ()
        )

    def module(self, shapes):
        extra = ", nonlinearity='relu'" if self.nonlinearity == "relu" else ""
        source = f"ExportableRNN({self.torch_args(shapes)}{extra})"
        return f"identity_recurrent({source})" if self.init == "identity" else source

    def call(self, module, args, shapes):
        if self.output == "sequence":
            return f"{module}({args[0]})[0]"
        last = "[-2:]" if self.bidirectional else "[-1:]"
        return f"torch.cat(tuple({module}({args[0]})[1]{last}), dim=-1)"
