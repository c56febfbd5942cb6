"""Errors an application embedding specc.runtime can catch; each message says what to fix."""


class SpeccRuntimeError(Exception):
    """Base of all specc.runtime errors."""


class ModelLoadError(SpeccRuntimeError):
    """The model file is missing, unreadable, or not a specc model."""


class DeviceError(SpeccRuntimeError):
    """The requested device cannot run the model (never a silent fallback)."""


class InputError(SpeccRuntimeError, ValueError):
    """Inputs do not match the model's declared names, dtypes or shapes."""
