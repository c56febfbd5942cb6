"""The registry of named data sets: what a spec may write after `name:` or `generate:`.

Each data set module registers its entries here, so the spec's allowed values, the rules about
which generation keys apply to which set, the schema's descriptions and the data stage all read
one table instead of keeping their own lists of names.

What `make(seed, **params)` returns depends on the kind:
- builtin (`data: {type: builtin, name: ...}`): (x, y, labels or None);
- text (`data: {type: text, generate: ...}`): (texts, labels, the label names in class order);
- pairs (`data: {type: pairs, generate: ...}`): (sources, targets), sources being strings or an
  (N, 1, H, W) float32 array of pictures.
Sets that are fixed (xor, the scikit-learn files) take the seed and ignore it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from ..diagnostics import did_you_mean

Kind = Literal["builtin", "text", "pairs"]
KIND_NAMES = {"builtin": "built-in data set", "text": "generated text set", "pairs": "pair set"}
KIND_SECTIONS = {
    "builtin": "data: {{type: builtin, name: {}}}",
    "text": "data: {{type: text, generate: {}}}",
    "pairs": "data: {{type: pairs, generate: {}}}",
}


@dataclass(frozen=True)
class DataSet:
    """One named data set: its kind, a one-line description for the schema and docs, the
    generation keys it accepts with their defaults (read from `make`'s signature, so they are
    written once), and the function that makes it."""

    name: str
    kind: Kind
    description: str
    params: Mapping[str, object]
    make: Callable[..., tuple]
    # How a raw value becomes an example, for clients outside Python (specc.preprocess), from
    # the same generation keys make() takes; None when the set has nothing to say.
    preprocess: Callable[..., dict] | None = None

    def __call__(self, seed: int, **given) -> tuple:
        """The data for `seed`; a parameter given as None takes its default."""
        unknown = sorted(set(given) - set(self.params))
        if unknown:
            raise TypeError(f"data set '{self.name}' takes no parameter '{unknown[0]}'")
        return self.make(seed, **{k: v for k, v in given.items() if v is not None})

    def preprocessing(self, data) -> dict:
        """What `preprocess` says for the keys of a spec's `data:` section ({} without one)."""
        if self.preprocess is None:
            return {}
        return self.preprocess(**{key: getattr(data, key) for key in self.params})

    def from_section(self, data, seed: int) -> tuple:
        """The data a spec's `data:` section asks for: the keys this set accepts, read from it."""
        return self(seed, **{key: getattr(data, key) for key in self.params})


REGISTRY: dict[str, DataSet] = {}


def register(
    name: str, kind: Kind, description: str, preprocess: Callable[..., dict] | None = None
):
    """Decorator: register `make(seed, key=default, ...)` as the data set `name`."""

    def add(make: Callable[..., tuple]) -> Callable[..., tuple]:
        if name in REGISTRY:
            raise ValueError(f"data set '{name}' is registered twice")
        seed, *rest = inspect.signature(make).parameters.values()
        if seed.name != "seed" or any(p.default is inspect.Parameter.empty for p in rest):
            raise TypeError(f"{name}: make(seed, key=default, ...) expected")
        params = MappingProxyType({p.name: p.default for p in rest})
        REGISTRY[name] = DataSet(name, kind, description, params, make, preprocess)
        return make

    return add


def entries(kind: Kind) -> tuple[DataSet, ...]:
    """The data sets of one kind, in the order they were registered."""
    return tuple(e for e in REGISTRY.values() if e.kind == kind)


def names(kind: Kind) -> tuple[str, ...]:
    return tuple(e.name for e in entries(kind))


def accepting(key: str, kind: Kind) -> tuple[str, ...]:
    """The data sets of one kind that take the generation key `key` (count, length, ...)."""
    return tuple(e.name for e in entries(kind) if key in e.params)


def get(name: str, kind: Kind) -> DataSet:
    """The entry, or a ValueError that names what exists (and the closest name)."""
    entry = REGISTRY.get(name)
    if entry is None or entry.kind != kind:
        raise ValueError(unknown(name, kind))
    return entry


def unknown(name: str, kind: Kind) -> str:
    """Why `name` is not a data set of this kind, and the names that are."""
    other = REGISTRY.get(name)
    if other is not None:
        hint = f"; '{name}' is a {KIND_NAMES[other.kind]}: {KIND_SECTIONS[other.kind].format(name)}"
    else:
        close = did_you_mean(name, names(kind))
        hint = f" ({close})" if close else ""
    return f"unknown {KIND_NAMES[kind]} '{name}'{hint}; there are: {', '.join(names(kind))}"


def known(name, kind: Kind):
    """A field validator's check: a string must name a data set of this kind. Other values
    pass through to the field's own type check."""
    if isinstance(name, str) and name not in names(kind):
        raise ValueError(unknown(name, kind))
    return name
