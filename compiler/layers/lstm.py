"""lstm: long short-term memory over a sequence (torch's nn.LSTM; an ONNX Scan on export)."""

from __future__ import annotations

from typing import ClassVar, Literal

from ._recurrent import RecurrentBase


class Lstm(RecurrentBase):
    """LSTM layer(s) over (batch, time, features)."""

    type: Literal["lstm"]
    gates: ClassVar[int] = 4
    doc_example: ClassVar[str] = "- {type: lstm, hidden_size: 32, output: last}"

    def module(self, shapes):
        return f"ExportableLSTM({self.torch_args(shapes)})"

    def helpers(self):
        return ("ExportableRecurrent",)

    def call(self, module, args, shapes):
        if self.output == "sequence":
            return f"{module}({args[0]})[0]"
        last = "[-2:]" if self.bidirectional else "[-1:]"  # h_n of the top layer, per direction
        return f"torch.cat(tuple({module}({args[0]})[1][0]{last}), dim=-1)"
