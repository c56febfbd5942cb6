"""The exporter: a generated model (and its weights) -> ONNX graphs, checked against PyTorch.

Needs torch (the runtime, which serves the graphs, never does). `graph` holds what every graph
goes through (dynamo export, metadata, checker), `parity` the gate that runs ONNX Runtime and
PyTorch side by side. Each task's own graphs (a step graph, encoder and decoder halves) live
with the task: compiler/tasks/<task>/export.py.
"""

from .errors import ExportError
from .examples import example_feeds
from .generated import instantiate, load_checkpoint, load_generated
from .graph import Method, export, named_dims
from .parity import Parity, localize, parity

__all__ = [
    "ExportError",
    "Method",
    "Parity",
    "example_feeds",
    "export",
    "instantiate",
    "load_checkpoint",
    "load_generated",
    "localize",
    "named_dims",
    "parity",
]
