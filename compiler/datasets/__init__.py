"""Named data sets, one module each, found through a registry (`registry.py`).

A module registers its set with `@register(name, kind, description)` on a `make(seed, ...)`
function; the keyword defaults of `make` are the generation keys the set accepts. The spec's
allowed `name:` / `generate:` values, which keys apply to which set, the schema's descriptions
and the data stage all come from here, so a new set is one new module imported below.
"""

from __future__ import annotations

from .registry import REGISTRY, DataSet, Kind, accepting, entries, get, known, names, unknown

__all__ = [
    "REGISTRY",
    "DataSet",
    "Kind",
    "accepting",
    "entries",
    "get",
    "known",
    "names",
    "unknown",
]

# Imported for their registrations, in the order the schema and the error messages list the sets.
# isort: off
from . import sklearn_sets, xor, road, adding, one_hot  # noqa: E402, F401
from . import sentiment, pairs, shapes  # noqa: E402, F401
from . import digit_attributes  # noqa: E402, F401
# isort: on
