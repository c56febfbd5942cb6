"""Errors an application embedding specc.runtime can catch; each message says what to fix."""


class SpeccRuntimeError(Exception):
    """Base of all specc.runtime errors."""


class ModelLoadError(SpeccRuntimeError):
    """The model file is missing, unreadable, or not a specc model."""


class DeviceError(SpeccRuntimeError):
    """The requested device cannot run the model (never a silent fallback)."""


class InputError(SpeccRuntimeError, ValueError):
    """Inputs do not match the model's declared names, dtypes or shapes, or hold values it cannot
    read (token ids outside its vocabulary, lengths outside 1..time, NaN or infinity)."""


class RunError(SpeccRuntimeError):
    """ONNX Runtime failed on inputs that passed the checks (its own message is kept).
    `input_refused` is True when ONNX Runtime called the inputs invalid (INVALID_ARGUMENT)."""

    input_refused: bool = False


class PositionLimitWarning(RuntimeWarning):
    """Decoding stopped at the longest sequence the model can represent, not at <eos>."""
