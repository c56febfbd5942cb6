"""Spec file -> plain data, with the file position of every key and value.

YAML is composed (never constructed) with PyYAML's safe composer, so no tag can build a Python
object and aliases are expanded under a budget (alias bombs are refused). TOML is parsed by the
standard library's `tomllib`; a small scanner then walks the same text to record where each
key and value sits, so both spellings give the same located errors.
"""

from __future__ import annotations

import bisect
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .diagnostics import Diagnostic, Pos, SpecError

Path_ = tuple  # a path into the data: ("model", 3, "kernel_size")

MAX_NODES = 100_000  # expanded YAML nodes; a spec has hundreds
MAX_BYTES = 4_000_000


@dataclass
class Source:
    """Loaded spec: plain data plus where each piece came from."""

    path: str
    text: str
    data: object
    value_pos: dict = field(default_factory=dict)
    key_pos: dict = field(default_factory=dict)
    overrides: dict = field(default_factory=dict)  # path -> the `--set KEY=VALUE` that wrote it

    def pos(self, path: Path_, at_key: bool = False) -> Pos | None:
        """Position of `path`, or of its nearest located ancestor."""
        path = tuple(path)
        while True:
            if at_key and path in self.key_pos:
                return self.key_pos[path]
            if path in self.value_pos:
                return self.value_pos[path]
            if path in self.key_pos:
                return self.key_pos[path]
            if not path:
                return None
            path = path[:-1]

    def error(self, path: Path_, message: str, hint: str | None = None, at_key=False):
        path = tuple(path)
        for where, text in self.overrides.items():
            if path[: len(where)] == where:
                return Diagnostic(f"--set {text}", None, message, hint)
        return Diagnostic(self.path, self.pos(path, at_key), message, hint)


def load_file(path: str | Path) -> Source:
    """Read and parse a .yaml/.yml/.toml spec; raises SpecError with located diagnostics."""
    p = Path(path)
    shown = str(path)
    if not p.exists():
        raise SpecError([Diagnostic(shown, None, "no such file")])
    if p.is_dir():
        raise SpecError([Diagnostic(shown, None, "is a directory, expected a .yaml or .toml spec")])
    raw = p.read_bytes()
    if len(raw) > MAX_BYTES:
        raise SpecError([Diagnostic(shown, None, f"file is larger than {MAX_BYTES} bytes")])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SpecError([Diagnostic(shown, None, f"not UTF-8 text ({e.reason} at byte {e.start})")])
    return load_text(text, shown, toml=p.suffix.lower() == ".toml")


def load_text(text: str, path: str = "<spec>", toml: bool = False) -> Source:
    if not text.strip() or (not toml and _only_comments(text)):
        raise SpecError(
            [Diagnostic(path, Pos(1, 1), "file is empty; a spec starts with 'specc: 1'")]
        )
    src = _load_toml(text, path) if toml else _load_yaml(text, path)
    if not isinstance(src.data, dict):
        raise SpecError(
            [
                Diagnostic(
                    path,
                    Pos(1, 1),
                    "a spec must be a mapping of sections (specc:, name:, inputs:, model:, ...)",
                )
            ]
        )
    return src


def _only_comments(text: str) -> bool:
    return all(
        not ln.strip() or ln.lstrip().startswith("#") or ln.strip() in ("---", "...")
        for ln in text.splitlines()
    )


# ----------------------------------------------------------------------------- YAML

_STD = "tag:yaml.org,2002:"
_SCALAR_TAGS = {_STD + t for t in ("str", "int", "float", "bool", "null", "timestamp")}


def _load_yaml(text: str, path: str) -> Source:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        pos = Pos(mark.line + 1, mark.column + 1) if mark else None
        msg = " ".join(x for x in (e.context, e.problem) if x) or "invalid YAML"
        raise SpecError([Diagnostic(path, pos, f"invalid YAML: {msg}")])
    except yaml.YAMLError as e:
        raise SpecError([Diagnostic(path, None, f"invalid YAML: {e}")])
    finally:
        loader.dispose()
    src = Source(path, text, None)
    if node is None:
        raise SpecError(
            [Diagnostic(path, Pos(1, 1), "file is empty; a spec starts with 'specc: 1'")]
        )
    errors: list[Diagnostic] = []
    budget = [MAX_NODES]
    src.data = _convert(node, (), src, errors, budget, loader)
    if errors:
        raise SpecError(errors)
    return src


def _mark(node) -> Pos:
    return Pos(node.start_mark.line + 1, node.start_mark.column + 1)


def _convert(node, path, src, errors, budget, loader):
    budget[0] -= 1
    if budget[0] < 0:
        if budget[0] == -1:
            errors.append(
                Diagnostic(
                    src.path,
                    _mark(node),
                    f"document expands to more than {MAX_NODES} nodes (an alias bomb?); anchors and aliases are limited",
                )
            )
        return None
    src.value_pos.setdefault(path, _mark(node))
    if isinstance(node, yaml.ScalarNode):
        if node.tag not in _SCALAR_TAGS:
            errors.append(
                Diagnostic(
                    src.path,
                    _mark(node),
                    f"unsupported YAML tag '{node.tag}': specs hold only plain strings, numbers, booleans, lists and mappings",
                )
            )
            return None
        if node.tag == _STD + "timestamp":
            return node.value
        return loader.construct_object(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        if node.tag != _STD + "seq":
            errors.append(Diagnostic(src.path, _mark(node), f"unsupported YAML tag '{node.tag}'"))
            return None
        return [
            _convert(child, path + (i,), src, errors, budget, loader)
            for i, child in enumerate(node.value)
        ]
    if isinstance(node, yaml.MappingNode):
        if node.tag != _STD + "map":
            errors.append(Diagnostic(src.path, _mark(node), f"unsupported YAML tag '{node.tag}'"))
            return None
        out: dict = {}
        for knode, vnode in node.value:
            if knode.tag == _STD + "merge":
                errors.append(
                    Diagnostic(
                        src.path,
                        _mark(knode),
                        "YAML merge keys (<<) are not supported; use 'blocks:' for reuse",
                    )
                )
                continue
            if not isinstance(knode, yaml.ScalarNode) or knode.tag not in _SCALAR_TAGS:
                errors.append(
                    Diagnostic(src.path, _mark(knode), "mapping keys must be plain strings")
                )
                continue
            key = str(knode.value)
            if key in out:
                errors.append(
                    Diagnostic(
                        src.path,
                        _mark(knode),
                        f"duplicate key '{key}'",
                        f"first defined at line {src.key_pos[path + (key,)].line}",
                    )
                )
                continue
            src.key_pos[path + (key,)] = _mark(knode)
            out[key] = _convert(vnode, path + (key,), src, errors, budget, loader)
        return out
    errors.append(Diagnostic(src.path, _mark(node), "unsupported YAML node"))
    return None


# ----------------------------------------------------------------------------- TOML

_TOML_POS = re.compile(r"\(at line (\d+), column (\d+)\)")


def _load_toml(text: str, path: str) -> Source:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        msg = str(e)
        m = _TOML_POS.search(msg)
        pos = Pos(int(m.group(1)), int(m.group(2))) if m else None
        msg = _TOML_POS.sub("", msg).strip()
        raise SpecError([Diagnostic(path, pos, f"invalid TOML: {msg}")])
    src = Source(path, text, data)
    _TomlLocator(text, src).run()
    return src


class _TomlLocator:
    """Walks well-formed TOML (tomllib already accepted it) and records key/value positions."""

    def __init__(self, text: str, src: Source):
        self.t = text
        self.i = 0
        self.src = src
        self.line_starts = [0] + [m.end() for m in re.finditer(r"\n", text)]
        self.aot_last: dict[tuple, int] = {}  # array-of-tables path -> index of its last element

    def at(self, offset: int) -> Pos:
        line = bisect.bisect_right(self.line_starts, offset) - 1
        return Pos(line + 1, offset - self.line_starts[line] + 1)

    def peek(self, s: str) -> bool:
        return self.t.startswith(s, self.i)

    def skip_ws(self, newlines: bool):
        while self.i < len(self.t):
            c = self.t[self.i]
            if c in " \t\r" or (newlines and c == "\n"):
                self.i += 1
            elif c == "#":
                while self.i < len(self.t) and self.t[self.i] != "\n":
                    self.i += 1
            else:
                break

    def run(self):
        table: tuple = ()
        while True:
            self.skip_ws(newlines=True)
            if self.i >= len(self.t):
                return
            start = self.i
            if self.peek("[["):
                self.i += 2
                keys = self.key()
                self.i = self.t.index("]]", self.i) + 2
                base = self.resolve(keys[:-1]) + (keys[-1],)
                idx = self.aot_last.get(base, -1) + 1
                self.aot_last[base] = idx
                table = base + (idx,)
                self.src.key_pos.setdefault(base, self.at(start))
                self.src.value_pos[table] = self.at(start)
            elif self.peek("["):
                self.i += 1
                keys = self.key()
                self.i = self.t.index("]", self.i) + 1
                table = self.resolve(keys)
                self.src.key_pos.setdefault(table, self.at(start))
                self.src.value_pos.setdefault(table, self.at(start))
            else:
                self.keyval(table)

    def resolve(self, keys: list[str]) -> tuple:
        """Dotted header keys -> data path, stepping into the last element of arrays of tables."""
        out: tuple = ()
        for k in keys:
            out = out + (k,)
            if out in self.aot_last:
                out = out + (self.aot_last[out],)
        return out

    def keyval(self, table: tuple):
        start = self.i
        keys = self.key()
        path = table + tuple(keys)
        self.src.key_pos.setdefault(path, self.at(start))
        self.skip_ws(newlines=False)
        self.i += 1  # '='
        self.skip_ws(newlines=False)
        self.value(path)

    def key(self) -> list[str]:
        keys = []
        while True:
            self.skip_ws(newlines=False)
            if self.peek('"') or self.peek("'"):
                q = self.t[self.i]
                j = self.i + 1
                buf = []
                while self.t[j] != q:
                    if q == '"' and self.t[j] == "\\":
                        buf.append(self.t[j : j + 2])
                        j += 2
                        continue
                    buf.append(self.t[j])
                    j += 1
                raw = "".join(buf)
                keys.append(tomllib.loads(f"k = {q}{raw}{q}")["k"])
                self.i = j + 1
            else:
                m = re.compile(r"[A-Za-z0-9_-]+").match(self.t, self.i)
                keys.append(m.group(0))
                self.i = m.end()
            self.skip_ws(newlines=False)
            if self.peek("."):
                self.i += 1
                continue
            return keys

    def value(self, path: tuple):
        self.src.value_pos[path] = self.at(self.i)
        if self.peek("{"):
            self.i += 1
            self.skip_ws(newlines=False)
            while not self.peek("}"):
                self.keyval(path)
                self.skip_ws(newlines=False)
                if self.peek(","):
                    self.i += 1
                    self.skip_ws(newlines=False)
            self.i += 1
        elif self.peek("["):
            self.i += 1
            idx = 0
            while True:
                self.skip_ws(newlines=True)
                if self.peek("]"):
                    self.i += 1
                    return
                self.value(path + (idx,))
                idx += 1
                self.skip_ws(newlines=True)
                if self.peek(","):
                    self.i += 1
        elif self.peek('"""') or self.peek("'''"):
            q = self.t[self.i : self.i + 3]
            j = self.i + 3
            while True:
                if q == '"""' and self.t[j] == "\\":
                    j += 2
                    continue
                if self.t.startswith(q, j):
                    j += 3
                    while j < len(self.t) and self.t[j] == q[0]:  # up to two quotes may close it
                        j += 1
                    break
                j += 1
            self.i = j
        elif self.peek('"') or self.peek("'"):
            q = self.t[self.i]
            j = self.i + 1
            while self.t[j] != q:
                j += 2 if (q == '"' and self.t[j] == "\\") else 1
            self.i = j + 1
        else:
            m = re.compile(r"[^,\]\}\n#]*").match(self.t, self.i)
            self.i = m.end()
