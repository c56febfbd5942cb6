"""Starting from weights (train.init), freezing layers (train.freeze) and parameter groups with
their own learning rate and weight decay (train.optimizer.groups).

`specc check` and `specc build` run the same matching (`match_weights`) on the model's
state_dict before any training, so a mismatch is reported at the spec's `init:` entry; train.py
runs it again on the file it finds when it starts.
"""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path

import torch

from ._spec import FREEZE, GROUPS, INIT
from .errors import TrainingError

# Set from the data when the spec standardizes its input, never from another model's weights.
DATA_BUFFERS = ("input_mean", "input_std")


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a state_dict (.pt/.pth), a safetensors file, a specc checkpoint or a specc
    run folder (the weights its results.json names), in the file's order."""
    path = Path(path)
    if path.is_dir():
        results = path / "results.json"
        if not results.is_file():
            raise TrainingError(f"{path} is a folder but not a finished specc run (no results.json)")
        path = path / json.loads(results.read_text(encoding="utf-8"))["weights"]
    if not path.is_file():
        raise TrainingError(f"no weights file at {path}")
    if path.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError:
            raise TrainingError(f"{path} is a safetensors file: pip install safetensors") from None
        try:
            return dict(load_file(str(path)))
        except Exception as e:
            raise TrainingError(f"{path} is not a readable safetensors file ({e})") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise TrainingError(
            f"{path} is not a PyTorch state_dict torch.load can read safely ({type(e).__name__})"
        ) from None
    if isinstance(state, dict) and isinstance(state.get("model"), dict):  # a specc checkpoint
        state = state["model"]
    elif isinstance(state, dict) and isinstance(state.get("state_dict"), dict):  # a common wrapping
        state = state["state_dict"]
    if not isinstance(state, dict) or not state:
        raise TrainingError(f"{path} holds no state_dict (a dict of tensors)")
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise TrainingError(f"{path}: entry {bad[0]!r} is not a tensor; expected a state_dict")
    return state


def named(name: str, patterns) -> bool:
    """Whether a tensor name falls under one of the patterns: a module name (`conv2d_1` covers
    `conv2d_1.weight`) or a shell pattern (`linear_*`)."""
    return any(name == p or name.startswith(p + ".") or fnmatch.fnmatchcase(name, p) for p in patterns)


def _shape(shape) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"


def match_weights(model: dict, file: dict, how: str, strict: bool, skip) -> tuple[list, list[str]]:
    """Pair the model's tensors (name -> shape, in order) with the file's.

    Names under `skip` (either side) and the standardization buffers take no part. Returns
    ([(model name, file name)], [problems]); a shape mismatch is always a problem, missing and
    unexpected tensors only when `strict`.
    """
    model = {k: tuple(v) for k, v in model.items() if not named(k, skip) and k not in DATA_BUFFERS}
    file = {k: tuple(v) for k, v in file.items() if not named(k, skip) and k not in DATA_BUFFERS}
    if how == "position":
        pairs = list(zip(model, file))
        missing, unexpected = list(model)[len(pairs) :], list(file)[len(pairs) :]
    else:
        pairs = [(k, k) for k in model if k in file]
        missing, unexpected = [k for k in model if k not in file], [k for k in file if k not in model]
    problems = []
    for position, (m, f) in enumerate(pairs):
        if model[m] != file[f]:
            at = f"position {position}: " if how == "position" else ""
            problems.append(
                f"{at}the model's {m} has shape {_shape(model[m])}, the file's {f} has shape {_shape(file[f])}"
            )
    if strict:
        problems += [f"missing from the file: the model's {m} {_shape(model[m])}" for m in missing]
        problems += [f"unexpected in the file: {f} {_shape(file[f])}, which the model lacks" for f in unexpected]
    return pairs, problems


def describe_problems(source: str, problems: list[str], how: str) -> str:
    shown = problems[:8] + ([f"... and {len(problems) - 8} more"] if len(problems) > 8 else [])
    hint = "list names under init.skip, or set init.strict: false to leave missing ones as initialized"
    if how == "name":
        hint += ", or map: position"
    return f"{len(problems)} mismatch(es) between the model and {source}:\n  " + "\n  ".join(shown) + f"\n  ({hint})"


def start_from(model: torch.nn.Module, path=None) -> None:
    """Load train.init's weights into the fresh model (bitwise: a copy, no conversion). `path`
    (train.py --init) overrides the file the spec names, which is relative to the spec."""
    if INIT is None:
        return
    path = Path(path or INIT["from"])
    try:
        state = read_weights(path)
        own = model.state_dict()
        pairs, problems = match_weights(
            {k: v.shape for k, v in own.items()},
            {k: v.shape for k, v in state.items()},
            INIT["map"],
            INIT["strict"],
            INIT["skip"],
        )
        if problems:
            raise TrainingError(describe_problems(str(path), problems, INIT["map"]))
    except TrainingError as e:
        raise TrainingError(f"{INIT['where']}: train.init: {e}") from None
    with torch.no_grad():
        for m, f in pairs:
            own[m].copy_(state[f])


def freeze(model: torch.nn.Module) -> None:
    """train.freeze: these layers' parameters get no gradient and join no optimizer."""
    for name, p in model.named_parameters():
        if named(name, FREEZE):
            p.requires_grad_(False)


def param_groups(model: torch.nn.Module) -> list[dict]:
    """The trainable parameters as optimizer groups: those of train.optimizer.groups with their
    own settings, in order, then the rest with the optimizer's."""
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups, taken = [], set()
    for group in GROUPS:
        mine = [p for n, p in params if n not in taken and named(n, group["layers"])]
        taken.update(n for n, _ in params if named(n, group["layers"]))
        if mine:
            settings = {k: v for k, v in group.items() if k != "layers" and v is not None}
            groups.append({"params": mine, **settings})
    rest = [p for n, p in params if n not in taken]
    return [{"params": rest}, *groups] if rest else groups
