"""gru: gated recurrent unit over a sequence (torch's nn.GRU; an ONNX Scan on export)."""

from __future__ import annotations

from typing import ClassVar, Literal

from ._recurrent import RecurrentBase


class Gru(RecurrentBase):
    """GRU layer(s) over (batch, time, features)."""

    type: Literal["gru"]
    gates: ClassVar[int] = 3
    doc_example: ClassVar[str] = "- {type: gru, hidden_size: 32, bidirectional: true}"

    def module(self, shapes):
        return f"ExportableGRU({self.torch_args(shapes)})"

    def helpers(self):
        return ("ExportableRecurrent",)

    def call(self, module, args, shapes):
        if self.output == "sequence":
            return f"{module}({args[0]})[0]"
        last = "[-2:]" if self.bidirectional else "[-1:]"
        return f"torch.cat(tuple({module}({args[0]})[1]{last}), dim=-1)"
