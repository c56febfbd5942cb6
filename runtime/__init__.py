"""specc.runtime: serve specc models through ONNX Runtime (numpy and onnxruntime only, no torch).

import specc.runtime as sr
model = sr.load("runs/lenet5")          # a .onnx file or a `specc train` folder
pred = model.predict(images)             # classes, labels, probabilities
"""

from .errors import DeviceError, InputError, ModelLoadError, SpeccRuntimeError
from .session import Model, Prediction, TensorInfo, load

__all__ = [
    "load",
    "Model",
    "Prediction",
    "TensorInfo",
    "SpeccRuntimeError",
    "ModelLoadError",
    "DeviceError",
    "InputError",
]
