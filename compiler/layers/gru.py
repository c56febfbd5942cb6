"""gru: gated recurrent unit over a sequence (torch's nn.GRU; an ONNX GRU on export)."""

from __future__ import annotations

from typing import ClassVar, Literal

from ._recurrent import RecurrentBase


class Gru(RecurrentBase):
    """GRU layer(s) over (batch, time, features)."""

    type: Literal["gru"]
    gates: ClassVar[int] = 3
    exportable: ClassVar[str] = "ExportableGRU"
    doc_example: ClassVar[str] = "- {type: gru, hidden_size: 32, bidirectional: true}"
    doc_shapes: ClassVar[str] = "(T, F) -> (T, H·dirs), (H·dirs) or (all final states)"
