"""Layer registry: every module in this package defines one layer type; they are collected here.

Adding a layer type means adding one file; tests are parametrized over `LAYERS`.
"""

from __future__ import annotations

import importlib
import pkgutil
import typing

from .base import Layer, ShapeError, fmt_shape

LAYERS: dict[str, type[Layer]] = {}

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if _info.name == "base" or _info.name.startswith("_"):
        continue
    _mod = importlib.import_module(f"{__name__}.{_info.name}")
    for _obj in vars(_mod).values():
        if isinstance(_obj, type) and issubclass(_obj, Layer) and _obj.__module__ == _mod.__name__:
            _tags = typing.get_args(_obj.model_fields["type"].annotation)
            if len(_tags) == 1:
                LAYERS[_tags[0]] = _obj

__all__ = ["LAYERS", "Layer", "ShapeError", "fmt_shape"]
