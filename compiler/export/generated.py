"""Load a generated model.py (and its trained weights) back into this process, for export."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path

import torch

from .errors import ExportError


def load_generated(model_dir: Path, file: str = "model.py"):
    """Import a generated model.py (or train.py) from its folder under a private module name.

    The name comes from the file's bytes: the same file always loads under the same name (the
    exporter records module names in the graph, which must not change from run to run), and
    two different files never share one."""
    path = Path(model_dir) / file
    sys.modules.pop("model", None)  # train.py imports its sibling model.py by that name
    name = f"specc_generated_{hashlib.sha256(path.read_bytes()).hexdigest()[:16]}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def instantiate(model_dir: Path, checkpoint: Path | None = None) -> torch.nn.Module:
    module = load_generated(model_dir)
    model = module.Model()
    if checkpoint is not None:
        state = load_checkpoint(checkpoint)
        model.load_state_dict(state["model"])
    return model.eval()


def load_checkpoint(path: Path) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ExportError(f"no checkpoint at {path}") from None
    except Exception as e:
        raise ExportError(
            f"checkpoint {path} is corrupt or not a specc checkpoint ({type(e).__name__})"
        ) from None
    if not isinstance(state, dict) or "model" not in state:
        raise ExportError(f"checkpoint {path} holds no model weights")
    return state
