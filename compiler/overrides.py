"""`--set KEY=VALUE`: change one value of a spec from the command line.

KEY is a dotted path into the spec (`train.optimizer.lr`, `model.3.out_features`); VALUE is read
as a YAML value (`3`, `0.01`, `true`, `[1, 2]`, `{type: cosine}`). The result is validated exactly
like the file, and an error in an overridden value names the override instead of a file line.
"""

from __future__ import annotations

import yaml

from .diagnostics import Diagnostic, SpecError
from .load import Source

USAGE = "expected KEY=VALUE with a dotted KEY, e.g. --set train.epochs=3"


def apply(src: Source, overrides: list[str]) -> None:
    """Write each override into src.data (in order), remembering which paths they own."""
    errors = []
    for text in overrides:
        try:
            path, value = _parse(text)
            _assign(src.data, path, value)
        except ValueError as e:
            errors.append(Diagnostic(f"--set {text}", None, str(e)))
            continue
        src.overrides[path] = text
    if errors:
        raise SpecError(errors)


def _parse(text: str) -> tuple[tuple, object]:
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ValueError(USAGE)
    path = tuple(int(p) if p.isdigit() else p for p in key.split("."))
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as e:
        raise ValueError(f"cannot read the value as YAML: {e.problem or e}") from None
    if not raw.strip():  # `KEY=null` is a value (it turns an optional section off)
        raise ValueError("the value is empty; write KEY=VALUE")
    return path, value


def _assign(data, path: tuple, value) -> None:
    node = data
    for depth, part in enumerate(path[:-1]):
        here = ".".join(map(str, path[: depth + 1]))
        if isinstance(node, dict):
            if isinstance(part, int):
                raise ValueError(f"'{here}': a mapping has no item {part}")
            node = node.setdefault(part, {})
        elif isinstance(node, list):
            if not isinstance(part, int) or not 0 <= part < len(node):
                raise ValueError(f"'{here}': no item {part} in a list of {len(node)}")
            node = node[part]
        else:
            raise ValueError(f"'{here}' holds a single value, not a section")
    last = path[-1]
    if not isinstance(node, dict | list):
        raise ValueError(f"'{'.'.join(map(str, path[:-1]))}' holds a single value, not a section")
    if isinstance(node, dict) and not isinstance(last, int):
        node[last] = value
    elif isinstance(node, list) and isinstance(last, int) and 0 <= last < len(node):
        node[last] = value
    else:
        raise ValueError(f"cannot set '{'.'.join(map(str, path))}' here")
