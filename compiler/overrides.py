"""`--set KEY=VALUE` and `--unset KEY`: change one value of a spec from the command line.

KEY is a dotted path into the spec (`train.optimizer.lr`, `model.3.out_features`); VALUE is read
as a YAML value (`3`, `0.01`, `true`, `[1, 2]`, `{type: cosine}`, `null`) under the same limits
as a spec file. `--unset KEY` removes the key (its default applies again) or the list item
(`--unset model.3`). The result is validated exactly like the file, and an error in an
overridden value names the override instead of a file line.

An `--unset KEY` travels in the same list as the `--set` values, as the text `--unset KEY`, so
the list that `spec.json` records and the spec's identity cover both.
"""

from __future__ import annotations

from .diagnostics import Diagnostic, SpecError, did_you_mean
from .limits import DEPTH
from .load import Source, check_values, load_value

USAGE = "expected KEY=VALUE with a dotted KEY, e.g. --set train.epochs=3"
UNSET = "--unset "


def unset(key: str) -> str:
    """The entry of the overrides list that removes `key`."""
    return UNSET + key


def apply(src: Source, overrides: list[str]) -> None:
    """Apply each override to src.data in order, remembering which paths the `--set`s own."""
    errors = []
    for text in overrides:
        removing = text.startswith(UNSET)
        shown = _shorten(text.rstrip() if removing else f"--set {text}")
        try:
            if removing:
                path = _key(text[len(UNSET) :], "expected a dotted KEY, e.g. --unset train.target")
                _delete(src, path)
                src.removed[path] = shown
            else:
                path, value = _parse(text)
                _assign(src.data, path, value)
                src.overrides[path] = shown
        except ValueError as e:
            errors.append(Diagnostic(shown, None, str(e)))
    if errors:
        raise SpecError(errors)
    errors = check_values(src.data, (), src.error)  # a long KEY nests its VALUE deeper
    if errors:
        raise SpecError(errors)


def _shorten(text: str, most: int = 120) -> str:
    """An option as messages name it: a long VALUE is cut (the option is on the command line)."""
    return text if len(text) <= most else text[: most - 3] + "..."


def _key(key: str, usage: str = USAGE) -> tuple:
    key = key.strip()
    parts = key.split(".")
    if not key or any(not part.strip() for part in parts):
        raise ValueError(usage)
    if len(parts) > DEPTH.value:
        raise ValueError(f"KEY has more than {DEPTH.value} parts, the nesting limit of a spec")
    return tuple(int(p) if p.isdigit() else p for p in parts)


def _parse(text: str) -> tuple[tuple, object]:
    key, sep, raw = text.partition("=")
    if not sep:
        raise ValueError(USAGE)
    path = _key(key)
    if not raw.strip():
        raise ValueError(
            "the value is empty; write KEY=VALUE (KEY=null clears a value, --unset KEY removes it)"
        )
    return path, load_value(raw, f"--set {text}")


def _walk(data, path: tuple, create: bool):
    """The mapping or list that holds path[-1]; `create` adds missing mappings on the way."""
    node = data
    for depth, part in enumerate(path[:-1]):
        here = ".".join(map(str, path[: depth + 1]))
        if isinstance(node, dict):
            if isinstance(part, int):
                raise ValueError(f"'{here}': a mapping has no item {part}")
            if part not in node and not create:
                raise ValueError(_absent(here, part, node))
            node = node.setdefault(part, {}) if create else node[part]
        elif isinstance(node, list):
            if not isinstance(part, int) or not 0 <= part < len(node):
                raise ValueError(f"'{here}': no item {part} in a list of {len(node)}")
            node = node[part]
        else:
            raise ValueError(f"'{here}' holds a single value, not a section")
    if not isinstance(node, dict | list):
        raise ValueError(f"'{'.'.join(map(str, path[:-1]))}' holds a single value, not a section")
    return node


def _absent(key: str, part, node: dict) -> str:
    hint = did_you_mean(part, node)
    return f"the spec has no '{key}'" + (f" ({hint})" if hint else "")


def _assign(data, path: tuple, value) -> None:
    node, last = _walk(data, path, create=True), path[-1]
    if isinstance(node, dict) and not isinstance(last, int):
        node[last] = value
    elif isinstance(node, list) and isinstance(last, int) and 0 <= last < len(node):
        node[last] = value
    else:
        raise ValueError(f"cannot set '{'.'.join(map(str, path))}' here")


def _delete(src: Source, path: tuple) -> None:
    """Remove a key, or a list item (later items move up, and so do their file positions)."""
    node, last = _walk(src.data, path, create=False), path[-1]
    key = ".".join(map(str, path))
    if isinstance(node, dict) and not isinstance(last, int):
        if last not in node:
            raise ValueError(_absent(key, last, node))
        del node[last]
    elif isinstance(node, list) and isinstance(last, int) and 0 <= last < len(node):
        del node[last]
        _shift(src, path[:-1], last)
    elif isinstance(node, list):
        raise ValueError(f"'{key}': no item {last} in a list of {len(node)}")
    else:
        raise ValueError(f"'{key}': a mapping has no item {last}")


def _shift(src: Source, at: tuple, removed: int) -> None:
    """Renumber the positions of the items after `removed` in the list at `at`."""
    n = len(at)

    def moved(path: tuple):
        if len(path) <= n or path[:n] != at or not isinstance(path[n], int):
            return path
        if path[n] == removed:
            return None
        return path if path[n] < removed else at + (path[n] - 1,) + path[n + 1 :]

    for table in (src.value_pos, src.key_pos, src.overrides):
        renamed = {}
        for path, pos in table.items():
            new = moved(path)
            if new is not None:
                renamed[new] = pos
        table.clear()
        table.update(renamed)
