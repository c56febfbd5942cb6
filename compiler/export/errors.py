"""The exporter's one error type, and how it shortens torch's long messages."""

from __future__ import annotations

from specc.runtime.errors import SpeccRuntimeError


class ExportError(SpeccRuntimeError):
    """The model could not be exported, or ONNX Runtime disagreed with PyTorch."""


def short(e: Exception) -> str:
    lines = [ln.strip() for ln in str(e).strip().splitlines() if ln.strip()]
    return (lines[0] if lines else type(e).__name__)[:300]
