"""Expansion: the layer sections of a spec, as written, -> one flat list of layers.

Bare-string layers (`- relu`) become mappings; `blocks:` uses are expanded (with `repeat:` and
`$param` substitution); every layer gets a name and an explicit `from:`. Each layer records where
it was written (for located errors, block bodies included) and which section it belongs to: the
section is data from here on, never recovered from an error location.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from . import limits
from .diagnostics import Diagnostic, did_you_mean
from .layers import LAYERS
from .load import Source

STRUCTURAL = ("type", "name", "from", "repeat")


@dataclass(frozen=True)
class Origin:
    """Where an expanded layer was written, the block use that produced it (if any), and the
    section it belongs to (model, encoder, latent, decoder, generator, discriminator)."""

    path: tuple
    block_use: tuple | None = None
    section: str = "model"


def block_note(src: Source, origin: Origin) -> str | None:
    """For an error inside a block body: where the block was used."""
    use = src.pos(origin.block_use) if origin.block_use is not None else None
    return f"in a block used at line {use.line}" if use else None


class _TooMany(Exception):
    """The expansion passed the layer limit; the error is recorded, the expansion stops."""


@dataclass(frozen=True)
class Scope:
    """Where a layer list is being expanded: the top of a section, or inside block uses."""

    names: dict | None = None  # a block body's local names -> expanded names ("input": ...)
    prefix: str = ""  # prepended to the names of layers inside a block use
    params: dict | None = None  # the block use's parameter values, for `$name`
    stack: tuple = ()  # the blocks being expanded, outermost first (to catch recursion)
    use: tuple | None = None  # where the outermost block use was written

    def local(self, name):
        """A name as written inside the block body -> the name it means after expansion."""
        if self.names is None or not isinstance(name, str):
            return name
        return self.names.get(name, name)


@dataclass(frozen=True)
class Section:
    """A list of layers under the top-level key `name`; `start` names what its first layer
    reads when it does not continue the previous section."""

    name: str
    start: str | None = None


@dataclass(frozen=True)
class Synthetic:
    """One layer specc adds to the chain, located at `at` (the VAE latent at `latent:`)."""

    name: str  # its section
    layer: dict
    at: tuple


class Expander:
    def __init__(self, raw: dict, src: Source, errors: list[Diagnostic], inputs: list[str]):
        """`inputs`: the model's inputs by name, the spec's own and those its task adds."""
        self.raw, self.src, self.errors, self.inputs = raw, src, errors, inputs
        blocks = raw.get("blocks")
        self.blocks = blocks if isinstance(blocks, dict) else {}
        self.counters: dict[str, int] = defaultdict(int)
        self.out: list[dict] = []
        self.origins: list[Origin] = []
        self.aliases: dict[str, str] = {}  # block instance name -> its last layer
        self.section = "model"  # the section being expanded: every layer records it
        self.limit = limits.LAYERS.value

    def run(self, chain: tuple) -> tuple[list[dict], list[Origin]]:
        """Expand each link of `chain` in order into one flat list of layers. A `Section` is a
        layer list under a top-level key; a `Synthetic` is one layer specc adds between sections
        (the VAE latent). Each layer reads the one before it unless it says otherwise, and a
        section's first layer reads its `start` when one is given (a GAN's halves)."""
        for name in self.blocks:
            if name in LAYERS:
                self.errors.append(
                    self.src.error(
                        ("blocks", name),
                        f"block name '{name}' is a built-in layer type",
                        at_key=True,
                    )
                )
        prev = self._first_input(chain)
        for link in chain:
            self.section = link.name
            if isinstance(link, Synthetic):
                self.out.append({**link.layer, "from": [prev] if prev else []})
                self.origins.append(Origin(link.at, None, link.name))
                prev = link.layer["name"]
                continue
            if link.start is not None:
                prev = link.start
            try:
                prev = self.emit(self.raw.get(link.name), (link.name,), prev, Scope())
            except _TooMany:
                break
        for layer in self.out:
            if isinstance(layer.get("from"), list):
                layer["from"] = [
                    self.aliases.get(n, n) if isinstance(n, str) else n for n in layer["from"]
                ]
        return self.out, self.origins

    def _first_input(self, chain: tuple) -> str | None:
        """What the first layer reads: the model's one data input (an input only read as some
        layer's `lengths:` does not count), or nothing when that is ambiguous."""
        first = self.raw.get(chain[0].name) if chain else None
        items = first if isinstance(first, list) else []
        lengths = {
            i.get("lengths")
            for i in items
            if isinstance(i, dict) and isinstance(i.get("lengths"), str)
        }
        data_inputs = [n for n in self.inputs if n not in lengths]
        return data_inputs[0] if len(data_inputs) == 1 else None

    def auto_name(self, kind: str, prefix: str) -> str:
        self.counters[prefix + kind] += 1
        return f"{prefix}{kind}_{self.counters[prefix + kind]}"

    def emit(self, items, path: tuple, prev: str | None, scope: Scope) -> str | None:
        """Append `items` (a layer list at `path`) to the flat list; return the last layer name."""
        if not isinstance(items, list):
            return prev
        for i, item in enumerate(items):
            ipath = path + (i,)
            if isinstance(item, str):
                item = {"type": item}
            if not isinstance(item, dict):
                self.errors.append(
                    self.src.error(
                        ipath, "a layer is a mapping with a 'type:' key, or a layer type name"
                    )
                )
                continue
            if scope.params is not None:
                item = self.substitute(item, scope.params, ipath)
            kind = item.get("type")
            if not isinstance(kind, str):
                self.errors.append(
                    self.src.error(ipath, "layer has no 'type:'", did_you_mean("relu", []))
                )
                continue
            repeat = item.get("repeat", 1)
            if not isinstance(repeat, int) or isinstance(repeat, bool) or repeat < 1:
                self.errors.append(
                    self.src.error(
                        ipath + ("repeat",), f"repeat must be a positive integer, got {repeat!r}"
                    )
                )
                continue
            if kind in LAYERS:
                prev = self.emit_layer(item, ipath, prev, scope)
            elif kind in self.blocks:
                prev = self.emit_block(item, ipath, prev, scope)
            else:
                hint = did_you_mean(kind, list(LAYERS) + list(self.blocks))
                self.errors.append(
                    self.src.error(ipath + ("type",), f"unknown layer type '{kind}'", hint)
                )
        return prev

    @staticmethod
    def refs(value, scope: Scope):
        """`from:` as a list, with a block body's local names replaced by the expanded ones."""
        if value is None:
            return None
        names = [value] if isinstance(value, str) else value
        if not isinstance(names, list):
            return value  # pydantic reports the type error
        return [scope.local(n) for n in names]

    def count(self, repeat: int, ipath: tuple, scope: Scope) -> None:
        """Refuse, before making them, layers past the limit (`repeat: 1000000`, or blocks
        repeated inside repeated blocks)."""
        if len(self.out) + repeat <= self.limit:
            return
        where = ipath + ("repeat",) if repeat > 1 else ipath
        note = block_note(self.src, Origin(ipath, scope.use))
        self.errors.append(
            self.src.error(
                where,
                limits.LAYERS.exceeded(f"this makes {len(self.out) + repeat:,} layers"),
                note,
            )
        )
        raise _TooMany

    def emit_layer(self, item: dict, ipath: tuple, prev: str | None, scope: Scope) -> str | None:
        """One built-in layer, `repeat` times; each copy reads the one before it."""
        kind, repeat, refs = item["type"], item.get("repeat", 1), self.refs(item.get("from"), scope)
        self.count(repeat, ipath, scope)
        local = item.get("name")
        base = f"{scope.prefix}{local}" if isinstance(local, str) else None
        for r in range(repeat):
            layer = {k: v for k, v in item.items() if k != "repeat"}
            name = base if base is not None else self.auto_name(kind, scope.prefix)
            if base is not None and repeat > 1:
                name = f"{base}_{r + 1}"
            layer["name"] = name
            if r == 0 and refs is not None:
                layer["from"] = list(refs) if isinstance(refs, list) else refs
            elif prev is not None:  # a repeat reads the copy before it, and the same memory
                extra = refs[1:] if isinstance(refs, list) else []
                layer["from"] = [prev, *extra]
            else:
                self.errors.append(
                    self.src.error(
                        ipath,
                        f"this layer must say which input it reads with 'from:' (the model has inputs {', '.join(self.inputs) or 'none'})",
                    )
                )
                layer["from"] = []
            lengths = item.get("lengths")  # a recurrent layer's lengths input is read like `from:`
            if isinstance(lengths, str) and isinstance(layer["from"], list):
                layer["from"].append(scope.local(lengths))
            init = item.get("initial_state")  # a state from another layer is read like `from:`
            if isinstance(init, dict) and isinstance(init.get("from"), str):
                if isinstance(layer["from"], list):
                    layer["from"].append(scope.local(init["from"]))
            self.out.append(layer)
            self.origins.append(Origin(ipath, scope.use, self.section))
            prev = name
        if base is not None and repeat > 1:  # the name of a repeated layer means its last copy
            self.aliases[base] = prev
        if scope.names is not None and isinstance(local, str):
            scope.names[local] = prev
        return prev

    def emit_block(self, item: dict, ipath: tuple, prev: str | None, scope: Scope) -> str | None:
        """The layers of a block from `blocks:`, `repeat` times, with the use's parameters."""
        kind, repeat, refs = item["type"], item.get("repeat", 1), self.refs(item.get("from"), scope)
        if kind in scope.stack:
            self.errors.append(
                self.src.error(
                    ipath + ("type",),
                    f"block '{kind}' uses itself (through {' -> '.join(scope.stack + (kind,))})",
                )
            )
            return prev
        if len(scope.stack) >= limits.DEPTH.value:
            self.errors.append(
                self.src.error(
                    ipath + ("type",),
                    f"blocks are used inside blocks more than {limits.DEPTH.value} levels deep, "
                    "the limit for a spec",
                )
            )
            return prev
        block = self.blocks[kind]
        if not isinstance(block, dict):
            return prev  # pydantic reports the malformed block
        self.count(repeat, ipath, scope)  # each use makes a layer at least
        params = self.block_params(item, kind, block, ipath)
        if refs is not None and len(refs) != 1:
            self.errors.append(self.src.error(ipath + ("from",), "a block reads exactly one input"))
            return prev
        if refs is not None:
            prev = refs[0]
        local = item.get("name")
        for r in range(repeat):
            inst = (
                local
                if isinstance(local, str)
                else self.auto_name(kind, scope.prefix)[len(scope.prefix) :]
            )
            if isinstance(local, str) and repeat > 1:
                inst = f"{local}_{r + 1}"
            inner = Scope(
                names={"input": prev},
                prefix=f"{scope.prefix}{inst}_",
                params=params,
                stack=scope.stack + (kind,),
                use=scope.use or ipath,
            )
            prev = self.emit(block.get("layers"), ("blocks", kind, "layers"), prev, inner)
            self.aliases[f"{scope.prefix}{inst}"] = prev
        if scope.names is not None and isinstance(local, str):
            scope.names[local] = prev
        return prev

    def block_params(self, item: dict, kind: str, block: dict, ipath: tuple) -> dict:
        """The block's declared parameters with their defaults, overridden by the use's keys."""
        declared = block.get("params") if isinstance(block.get("params"), dict) else {}
        params = dict(declared)
        for key, value in item.items():
            if key in STRUCTURAL:
                continue
            if key not in declared:
                hint = did_you_mean(key, declared) or (
                    f"block '{kind}' takes: {', '.join(declared)}"
                    if declared
                    else f"block '{kind}' declares no params"
                )
                self.errors.append(
                    self.src.error(
                        ipath + (key,),
                        f"block '{kind}' has no parameter '{key}'",
                        hint,
                        at_key=True,
                    )
                )
            params[key] = value
        return params

    def substitute(self, value, params, path):
        if isinstance(value, str) and value.startswith("$"):
            key = value[1:]
            if key in params:
                return params[key]
            self.errors.append(
                self.src.error(
                    path, f"'{value}' is not a parameter of this block", did_you_mean(key, params)
                )
            )
            return value
        if isinstance(value, dict):
            return {k: self.substitute(v, params, path + (k,)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.substitute(v, params, path + (i,)) for i, v in enumerate(value)]
        return value
