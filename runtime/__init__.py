"""specc.runtime: serve specc models through ONNX Runtime (numpy and onnxruntime only, no torch).

import specc.runtime as sr
model = sr.load("runs/lenet5")          # a .onnx file or a `specc train` folder
pred = model.predict(images)             # classes, labels, probabilities
lm = sr.LanguageModel("runs/char_lm")    # a language model's step graph
text = lm.generate("The ", max_tokens=100, temperature=0.8, seed=0)
ae = sr.Autoencoder("runs/vae_digits")  # encode, decode, reconstruct, sample, interpolate
s2s = sr.Seq2Seq("runs/seq2seq_reverse")  # translate: greedy, beam or sampled decoding
ml = sr.MultiLabel("runs/multilabel_digits")  # several yes/no labels per input, at a threshold
"""

from .errors import (
    DeviceError,
    InputError,
    ModelLoadError,
    PositionLimitWarning,
    RunError,
    SpeccRuntimeError,
)
from .generate import Decoded, LanguageModel, generate
from .generative import Autoencoder, Generator, save_grid
from .multilabel import LabelSets, MultiLabel
from .session import Model, Prediction, Predictions, TensorInfo, load
from .translate import Seq2Seq

__all__ = [
    "load",
    "generate",
    "LanguageModel",
    "Autoencoder",
    "Generator",
    "Seq2Seq",
    "MultiLabel",
    "LabelSets",
    "save_grid",
    "Model",
    "Prediction",
    "Predictions",
    "TensorInfo",
    "SpeccRuntimeError",
    "ModelLoadError",
    "DeviceError",
    "InputError",
    "RunError",
    "PositionLimitWarning",
    "Decoded",
]
