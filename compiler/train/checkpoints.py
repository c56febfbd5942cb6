"""Checkpoints: written atomically, read without running code, refused when another spec's."""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

import numpy as np
import torch

from ._spec import SPEC_SHA256
from .errors import CHECKPOINT_FORMAT, TrainingError


def rng_state() -> dict:
    """Every random generator a training step can touch (weights only: tensors, ints, floats)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": pos,
            "has_gauss": has_gauss,
            "gauss": gauss,
        },
        "python": random.getstate(),
    }


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    random.setstate(state["python"])


def save_checkpoint(path: Path, state: dict) -> None:
    """Write, fsync, rename: a crash leaves the previous checkpoint intact, never a torn file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:  # a full disk, a kill: no half-written file is left behind
        tmp.unlink(missing_ok=True)
        if isinstance(e, OSError) and e.filename is None:
            e.filename = str(path)  # name the checkpoint in the message a full disk gives
        raise


def load_checkpoint(path: Path) -> dict:
    """Load with weights_only=True (no code runs); refuse a torn file or another spec's checkpoint."""
    if not path.is_file():
        raise TrainingError(f"no checkpoint to resume from at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for a damaged file
        raise TrainingError(
            f"{path} is not a readable checkpoint: truncated, corrupt, or not a checkpoint at all ({type(e).__name__})"
        ) from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise TrainingError(f"{path} is not a checkpoint written by this script")
    if state.get("spec_sha256") != SPEC_SHA256:
        raise TrainingError(
            f"{path} was written for another spec (sha256 {str(state.get('spec_sha256'))[:12]}..., this script is {SPEC_SHA256[:12]}...); "
            "train into a fresh folder, or rebuild from the spec that wrote it"
        )
    return state


def params_sha256(model: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()
