"""train.init, train.freeze and train.optimizer.groups at compile time: the names they give are
checked against the spec's layers (located errors), and the weights file, where it exists, is
matched against the model's state_dict before anything trains.

The matching itself is the machinery's (compiler/train/init.py), so `specc check` and the
generated train.py agree on what fits.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from .diagnostics import Diagnostic, SpecError, did_you_mean
from .tasks import TASKS


def layers_named(parsed, entry: str) -> list[str]:
    """The layers a freeze or group entry means: the layer of that name, the layers of a block
    use of that name (expanded as `<use>_<layer>`), or every layer of a section (encoder, ...)."""
    found = []
    for layer, origin in zip(parsed.layers, parsed.origins, strict=True):
        in_block = origin.block_use is not None and layer.name.startswith(entry + "_")
        if (
            layer.name == entry
            or in_block
            or (origin.section == entry and origin.section != "model")
        ):
            found.append(layer.name)
    return found


def _entries(spec):
    """(path in the spec, name) of every layer name under freeze: and optimizer.groups."""
    train = spec.train
    for k, name in enumerate(train.freeze):
        yield ("train", "freeze", k), name
    for g, group in enumerate(train.optimizer.groups):
        for k, name in enumerate(group.layers):
            yield ("train", "optimizer", "groups", g, "layers", k), name


def name_rules(parsed) -> list[Diagnostic]:
    """Each freeze/group name must name something; a GAN's two optimizers take neither."""
    src, spec, errors = parsed.source, parsed.spec, []
    if not TASKS[spec.task].one_optimizer and (spec.train.freeze or spec.train.optimizer.groups):
        key = "freeze" if spec.train.freeze else "optimizer"
        errors.append(
            src.error(
                ("train", key),
                f"task: {spec.task} does not take train.{key} (its networks have their own "
                "optimizers)",
            )
        )
        return errors
    names = [layer.name for layer in parsed.layers]
    for path, name in _entries(spec):
        if not layers_named(parsed, name):
            errors.append(
                src.error(
                    path,
                    f"'{name}' names no layer, block use or section",
                    did_you_mean(name, names),
                )
            )
    return errors


def modules(parsed, idents: dict[str, str], entries) -> tuple[str, ...]:
    """The module attribute names (model.py) of the layers the entries name, in model order."""
    wanted = {n for e in entries for n in layers_named(parsed, e)}
    return tuple(
        idents[layer.name]
        for layer in parsed.layers
        if layer.name in wanted and layer.name in idents
    )


def init_path(compiled) -> Path | None:
    """train.init's file, relative to the spec's folder (what `specc train` hands train.py)."""
    init = compiled.spec.train.init
    return None if init is None else (Path(compiled.path).resolve().parent / init.from_).resolve()


def init_settings(parsed) -> dict | None:
    """train.init for the generated train.py: the file as the spec wrote it (relative to the
    spec; `specc train` passes train.py the resolved path) and where (its errors point there).
    Nothing machine-specific: the same spec renders the same train.py anywhere."""
    init = parsed.spec.train.init
    if init is None:
        return None
    src = parsed.source
    pos = src.pos(("train", "init"))
    name = Path(src.path).name
    where = f"{name}:{pos.line}:{pos.col}" if pos else name
    return {
        "from": init.from_,
        "map": init.map,
        "strict": init.strict,
        "skip": list(init.skip),
        "where": where,
    }


def check_init(compiled) -> None:
    """Match train.init's file against the model, when the file exists (it may be the output of
    a run not yet trained): every mismatch is a located error at the `init:` entry."""
    settings, path = init_settings(compiled.parsed), init_path(compiled)
    if settings is None or not path.exists():
        return
    from .codegen import write
    from .export import instantiate
    from .train.errors import TrainingError
    from .train.init import describe_problems, match_weights, read_weights

    src = compiled.parsed.source
    at = ("train", "init")
    try:
        state = read_weights(path)
    except TrainingError as e:
        raise SpecError([src.error(at, f"train.init: {e}")]) from None
    with tempfile.TemporaryDirectory() as tmp:
        write(compiled, Path(tmp))
        own = instantiate(Path(tmp)).state_dict()
    _, problems = match_weights(
        {k: v.shape for k, v in own.items()},
        {k: v.shape for k, v in state.items()},
        settings["map"],
        settings["strict"],
        settings["skip"],
    )
    if problems:
        message = describe_problems(str(path), problems, settings["map"])
        raise SpecError([src.error(at, f"train.init: {message}")])
