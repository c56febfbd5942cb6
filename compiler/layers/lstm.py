"""lstm: long short-term memory over a sequence (torch's nn.LSTM; an ONNX LSTM on export)."""

from __future__ import annotations

from typing import ClassVar, Literal

from ._recurrent import RecurrentBase


class Lstm(RecurrentBase):
    """LSTM layer(s) over (batch, time, features)."""

    type: Literal["lstm"]
    gates: ClassVar[int] = 4
    exportable: ClassVar[str] = "ExportableLSTM"
    states: ClassVar[int] = 2
    doc_example: ClassVar[str] = "- {type: lstm, hidden_size: 32, output: last}"
    doc_shapes: ClassVar[str] = "(T, F) -> (T, H·dirs), (H·dirs) or (all final states)"
