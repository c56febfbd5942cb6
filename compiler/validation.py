"""pydantic's validation errors -> located diagnostics (`file:line:col: error: ...`).

Errors about the spec's own keys point where they were written. Errors about an expanded layer
point where that layer was written (inside a block body when it came from one), with a note
naming the line of the block use.
"""

from __future__ import annotations

from typing import get_args, get_origin

from pydantic import BaseModel

from .diagnostics import Diagnostic, did_you_mean
from .expand import block_note
from .layers import LAYERS
from .load import Source

SPEC_VERSION = 1


def diagnostics(
    errors: list[dict], data, src: Source, model: type[BaseModel] | None, origins=None
) -> list[Diagnostic]:
    """`data` is what was validated: the spec's mapping against `model`, or (with `origins`)
    the flat list of expanded layers."""
    out = []
    for err in errors:
        path, _, _ = _walk(data, err["loc"])
        where, note = path, None
        if origins is not None and path and isinstance(path[0], int) and path[0] < len(origins):
            origin = origins[path[0]]
            where, note = origin.path + path[1:], block_note(src, origin)
        out.append(_one(err, path, where, note, data, src, model))
    return out


def _one(err, path, where, note, data, src, model) -> Diagnostic:
    kind = err["type"]
    key = path[-1] if path else None
    if path == ("specc",) and kind != "missing":
        return src.error(
            path,
            f"unsupported spec language version {err.get('input')!r}; this specc reads 'specc: {SPEC_VERSION}'",
        )
    if kind == "missing":
        return src.error(where[:-1], f"missing required key '{key}'", note)
    if kind == "extra_forbidden":
        fields = _fields_at(path[:-1], data, model)
        hint = did_you_mean(key, fields) or note
        return src.error(where, f"unknown key '{key}'", hint, at_key=True)
    msg = err["msg"].removeprefix("Value error, ")
    msg = msg[:1].lower() + msg[1:]
    label = f"'{key}'" if isinstance(key, str) else "this value"
    shown = repr(err.get("input"))
    if kind.endswith(("_type", "_parsing")) and len(shown) < 60:
        msg += f", got {shown}"
    return src.error(where, f"invalid {label}: {msg}", note)


def _walk(data, loc) -> tuple[tuple, object, bool]:
    """Follow a pydantic loc through the data, dropping union tags. Returns (path, node, found)."""
    node, path = data, []
    for part in loc:
        if isinstance(node, dict) and part in node:
            node = node[part]
            path.append(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
            path.append(part)
        elif isinstance(node, dict) and isinstance(part, str) and part == node.get("type"):
            continue  # a discriminated union's tag
        elif isinstance(part, str) and part.startswith(("function-", "[key]")):
            continue
        else:
            path.append(part)
            return tuple(path), None, False
    return tuple(path), node, True


def _fields_at(path: tuple, data, model: type[BaseModel] | None) -> set[str]:
    """Keys allowed where `path` points, for 'did you mean' hints."""
    if model is None:  # the flat layer list: path is (index, key, ...)
        layer = data[path[0]] if path and isinstance(path[0], int) else None
        cls = LAYERS.get(layer.get("type")) if isinstance(layer, dict) else None
        node = layer
        path = path[1:]
    else:
        cls, node = model, data
    keyed = False  # the last field was a mapping (inputs:, blocks:): this key is a name
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
        if keyed:
            keyed = False
            continue
        field = cls.model_fields.get(key) if cls is not None and isinstance(key, str) else None
        if field is None:
            return set()
        keyed = any(get_origin(a) is dict for a in (field.annotation, *get_args(field.annotation)))
        cls = _model_class(field.annotation, node)
        if cls is None:
            return {"type"}
    return {f.alias or k for k, f in cls.model_fields.items()} if cls is not None else set()


def _model_class(annotation, node):
    """The pydantic model an annotation holds (picking a union member by the node's type)."""
    candidates = [
        a for a in _flatten(annotation) if isinstance(a, type) and issubclass(a, BaseModel)
    ]
    if len(candidates) == 1:
        return candidates[0]
    kind = node.get("type") if isinstance(node, dict) else None
    for c in candidates:
        field = c.model_fields.get("type")
        if field is not None and kind in getattr(field.annotation, "__args__", ()):
            return c
    return None


def _flatten(annotation):
    args = get_args(annotation)
    if not args:
        return [annotation]
    return [leaf for a in args for leaf in _flatten(a)]
