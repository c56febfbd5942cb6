"""What rnn, lstm and gru share: sizes, stacking, direction, and which output a layer gives."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, NonNegativeFloat, PositiveInt

from .base import Layer, ShapeError, args, fmt_shape, need_int, opt


class RecurrentBase(Layer):
    hidden_size: PositiveInt = Field(description="Units per direction and layer.")
    num_layers: PositiveInt = Field(1, description="Stacked layers.")
    bidirectional: bool = Field(False, description="Also run right to left; outputs concatenate.")
    dropout: NonNegativeFloat = Field(0.0, lt=1.0, description="Dropout between stacked layers.")
    output: Literal["sequence", "last"] = Field(
        "sequence",
        description="sequence: every step (many-to-many); last: the final state (many-to-one).",
    )

    gates: ClassVar[int] = 1  # weight blocks per unit: lstm 4, gru 3, rnn 1
    exportable: ClassVar[str] = ""  # the helper class that runs it (layers/_helpers.py)
    final_state: ClassVar[str] = "[1]"  # where h_n sits in the layer's result (lstm: (h_n, c_n))

    def infer(self, shapes):
        shape = shapes[0]
        if len(shape) != 2:
            raise ShapeError(
                f"{self.type} expects a sequence (batch, time, features), got {fmt_shape(shape)}",
                hint="declare the input as [time, features] (an embedding gives that from token ids)",
            )
        need_int(shape[-1], f"{self.type}'s input features")
        width = self.hidden_size * (2 if self.bidirectional else 1)
        return (shape[0], width) if self.output == "sequence" else (width,)

    def param_count(self, shapes):
        h, dirs, g = self.hidden_size, 2 if self.bidirectional else 1, self.gates
        total, width = 0, shapes[0][-1]
        for _ in range(self.num_layers):
            total += dirs * g * h * (width + h + 2)
            width = h * dirs
        return total

    def torch_args(self, shapes) -> str:
        return args(
            shapes[0][-1],
            self.hidden_size,
            num_layers=opt(self.num_layers, 1),
            dropout=opt(self.dropout, 0.0),
            bidirectional=opt(self.bidirectional, False),
            batch_first=True,
        )

    def helpers(self):
        return ("ExportableRecurrent",)

    def module(self, shapes):
        return f"{self.exportable}({self.torch_args(shapes)})"

    def call(self, module, args, shapes):
        if self.output == "sequence":
            return f"{module}({args[0]})[0]"
        last = "[-2:]" if self.bidirectional else "[-1:]"  # the top layer's h_n, per direction
        return f"torch.cat(tuple({module}({args[0]}){self.final_state}{last}), dim=-1)"
