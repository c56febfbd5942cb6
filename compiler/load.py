"""Spec file -> plain data, with the file position of every key and value.

YAML is composed (never constructed) with PyYAML's safe composer, so no tag can build a Python
object and aliases are expanded under a budget (alias bombs are refused). TOML is parsed by the
standard library's `tomllib`; a small scanner then walks the same text to record where each
key and value sits, so both spellings give the same located errors.
"""

from __future__ import annotations

import bisect
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from . import limits
from .diagnostics import Diagnostic, Pos, SpecError

Path_ = tuple  # a path into the data: ("model", 3, "kernel_size")


@dataclass
class Source:
    """Loaded spec: plain data plus where each piece came from."""

    path: str
    text: str
    data: object
    value_pos: dict = field(default_factory=dict)
    key_pos: dict = field(default_factory=dict)
    overrides: dict = field(default_factory=dict)  # path -> "--set KEY=VALUE" that wrote it
    removed: dict = field(default_factory=dict)  # path -> "--unset KEY" that removed it

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
        """A diagnostic at `path`: at the `--set` that wrote it, or that made the section it
        names (a section the file does not have); else at its line in the file."""
        path = tuple(path)
        written = path in self.value_pos or path in self.key_pos
        inside = []  # --sets that changed something under a section the file has
        for where, text in reversed(self.overrides.items()):  # the last --set of a path wins
            if path[: len(where)] == where or (not written and where[: len(path)] == path):
                return Diagnostic(text, None, message, hint)
            if path and where[: len(path)] == path:
                inside.append(text)
        inside += [text for where, text in self.removed.items() if where[:-1] == path]
        if inside:  # the section is in the file, but a --set changed it: say so
            hint = "; ".join(filter(None, [hint, f"after {inside[0]}"]))
        return Diagnostic(self.path, self.pos(path, at_key), message, hint)


def load_file(path: str | Path) -> Source:
    """Read and parse a .yaml/.yml/.toml spec; raises SpecError with located diagnostics."""
    p = Path(path)
    shown = str(path)
    if not p.exists():
        raise SpecError([Diagnostic(shown, None, "no such file")])
    if p.is_dir():
        raise SpecError([Diagnostic(shown, None, "is a directory, expected a .yaml or .toml spec")])
    if not p.is_file():  # a FIFO or a device (/dev/zero) would be read forever
        raise SpecError([Diagnostic(shown, None, "is not a regular file")])
    try:
        with p.open("rb") as f:
            raw = f.read(limits.FILE_BYTES.value + 1)
    except OSError as e:
        raise SpecError([Diagnostic(shown, None, f"cannot read: {e.strerror or e}")]) from None
    if len(raw) > limits.FILE_BYTES.value:
        raise SpecError(
            [
                Diagnostic(
                    shown,
                    Pos(1, 1),
                    f"file is larger than {limits.FILE_BYTES.value:,} bytes, the limit for a "
                    "spec (a spec is a few kilobytes)",
                    "a long text corpus goes in a file of its own: data: {type: text, path: ...}",
                )
            ]
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        col = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        raise SpecError(
            [Diagnostic(shown, Pos(line, col), f"not UTF-8 text ({e.reason} at byte {e.start})")]
        ) from None
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
    errors = check_values(src.data, (), src.error)
    if errors:
        raise SpecError(errors)
    return src


def load_value(text: str, where: str) -> object:
    """One YAML value (a `--set` VALUE) under the same limits as a file; raises ValueError."""
    try:
        src = _load_yaml(text, where)
    except SpecError as e:
        message = e.diagnostics[0].message
        if message.startswith("file is empty"):
            raise ValueError("the value is empty (a YAML comment?)") from None
        raise ValueError(message.replace("invalid YAML: ", "cannot read the value as YAML: "))
    errors = check_values(src.data, (), lambda path, message, hint=None: message)
    if errors:
        raise ValueError(errors[0])
    return src.data


def check_values(data, at: tuple, error) -> list:
    """Numbers a spec may hold (finite, integers within int64) and the nesting limit, walked
    without recursion; `error(path, message, hint)` makes each problem. TOML's values and
    --set values come here unchecked; YAML's depth was checked while composing."""
    problems = []
    stack = [(at, data, len(at))]
    while stack:
        path, value, depth = stack.pop()
        if isinstance(value, bool):
            continue
        if isinstance(value, int) and not -limits.INT_MAX - 1 <= value <= limits.INT_MAX:
            problems.append(
                error(path, f"the integer {value} is too large: a spec's integers fit in 64 bits")
            )
        elif isinstance(value, float) and not math.isfinite(value):
            problems.append(
                error(path, f"{value} is not a number a spec accepts: numbers are finite")
            )
        elif isinstance(value, dict | list):
            if depth >= limits.DEPTH.value:
                problems.append(error(path, _too_deep()))
                continue
            items = value.items() if isinstance(value, dict) else enumerate(value)
            stack.extend((path + (k,), v, depth + 1) for k, v in items)
    return problems


def _too_deep() -> str:
    return (
        f"values are nested more than {limits.DEPTH.value} levels deep, the limit for a spec "
        "(a spec nests a few levels: blocks.NAME.layers.0.KEY)"
    )


def _too_many() -> str:
    return (
        f"the document holds more than {limits.NODES.value:,} values, the limit for a spec "
        "(a spec holds hundreds; anchors and aliases count each time they are used)"
    )


def _only_comments(text: str) -> bool:
    return all(
        not ln.strip() or ln.lstrip().startswith("#") or ln.strip() in ("---", "...")
        for ln in text.splitlines()
    )


# ----------------------------------------------------------------------------- YAML

_STD = "tag:yaml.org,2002:"
_SCALAR_TAGS = {_STD + t for t in ("str", "int", "float", "bool", "null", "timestamp")}
# libyaml when PyYAML was built with it (the wheels are): the composer below reads its events,
# so a file is parsed in C and the limits hold before a node is built in Python.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Refused(Exception):
    """A limit stopped the composer; the diagnostic says which."""

    def __init__(self, diagnostic: Diagnostic):
        self.diagnostic = diagnostic


def _load_yaml(text: str, path: str) -> Source:
    errors: list[Diagnostic] = []
    loader = None
    try:
        loader = _LOADER(text)
        node = _compose(loader, path)
    except UnicodeEncodeError as e:  # a lone surrogate, which only a command line can carry
        raise SpecError(
            [Diagnostic(path, Pos(1, 1), f"not UTF-8 text ({e.reason} at character {e.start})")]
        ) from None
    except _Refused as r:
        raise SpecError([r.diagnostic]) from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        pos = Pos(mark.line + 1, mark.column + 1) if mark else None
        msg = " ".join(x for x in (e.context, e.problem) if x) or "invalid YAML"
        raise SpecError([Diagnostic(path, pos, f"invalid YAML: {msg}")]) from None
    except yaml.reader.ReaderError as e:
        pos = _reader_pos(text, e)
        what = f"character {e.character:#06x}" if isinstance(e.character, int) else "a character"
        raise SpecError(
            [Diagnostic(path, pos, f"invalid YAML: {what} is not allowed ({e.reason})")]
        ) from None
    except yaml.YAMLError as e:
        raise SpecError([Diagnostic(path, Pos(1, 1), f"invalid YAML: {e}")]) from None
    finally:
        if loader is not None:
            loader.dispose()
    src = Source(path, text, None)
    if node is None:
        raise SpecError(
            [Diagnostic(path, Pos(1, 1), "file is empty; a spec starts with 'specc: 1'")]
        )
    budget = [limits.NODES.value]
    src.data = _convert(node, (), src, errors, budget, loader, 0)
    if errors:
        raise SpecError(errors)
    return src


_NON_PRINTABLE = re.compile(yaml.reader.Reader.NON_PRINTABLE.pattern)


def _reader_pos(text: str, e) -> Pos:
    """Where the reader stopped: the first character YAML does not allow."""
    m = _NON_PRINTABLE.search(text)
    offset = m.start() if m else min(max(e.position, 0), len(text))
    line = text.count("\n", 0, offset)
    return Pos(line + 1, offset - (text.rfind("\n", 0, offset) + 1) + 1)


def _compose(loader, path: str):
    """The document's node tree, built from the parser's events without recursion, refusing a
    document nested deeper than the depth limit or with more values than the node limit as
    soon as the parser reaches that point (PyYAML's own composer recurses per level)."""
    depth_limit, node_limit = limits.DEPTH.value, limits.NODES.value
    loader.get_event()  # stream start
    if loader.check_event(yaml.StreamEndEvent):
        return None
    loader.get_event()  # document start
    anchors: dict = {}
    stack: list = []  # open collections: [node, the key read for it, or None]
    root = None
    count = 0

    def refuse(event, message):
        raise _Refused(Diagnostic(path, _event_pos(event), message))

    while True:
        event = loader.get_event()
        if isinstance(event, yaml.SequenceEndEvent | yaml.MappingEndEvent):
            node = stack.pop()[0]
            node.end_mark = event.end_mark
            continue
        if isinstance(event, yaml.DocumentEndEvent):
            break
        if isinstance(event, yaml.AliasEvent):
            if event.anchor not in anchors:
                refuse(event, f"invalid YAML: found undefined alias '{event.anchor}'")
            node = anchors[event.anchor]
        else:
            count += 1
            if count > node_limit:
                refuse(event, _too_many())
            if event.anchor is not None and event.anchor in anchors:
                first = _event_pos(anchors[event.anchor]).line
                refuse(
                    event,
                    f"invalid YAML: anchor '{event.anchor}' is defined twice (first at line {first})",
                )
            tag = event.tag
            if isinstance(event, yaml.ScalarEvent):
                if tag is None or tag == "!":
                    tag = loader.resolve(yaml.ScalarNode, event.value, event.implicit)
                node = yaml.ScalarNode(
                    tag, event.value, event.start_mark, event.end_mark, style=event.style
                )
            else:
                kind = (
                    yaml.SequenceNode
                    if isinstance(event, yaml.SequenceStartEvent)
                    else yaml.MappingNode
                )
                if tag is None or tag == "!":
                    tag = loader.resolve(kind, None, event.implicit)
                node = kind(tag, [], event.start_mark, None, flow_style=event.flow_style)
            if event.anchor is not None:
                anchors[event.anchor] = node
        if stack:
            parent = stack[-1]
            if isinstance(parent[0], yaml.SequenceNode):
                parent[0].value.append(node)
            elif parent[1] is None:
                parent[1] = node
            else:
                parent[0].value.append((parent[1], node))
                parent[1] = None
        else:
            root = node
        if isinstance(event, yaml.SequenceStartEvent | yaml.MappingStartEvent):
            if len(stack) >= depth_limit:
                refuse(event, _too_deep())
            stack.append([node, None])
    if not loader.check_event(yaml.StreamEndEvent):
        event = loader.get_event()
        refuse(
            event,
            "invalid YAML: expected a single document in the stream, but found another document",
        )
    return root


def _event_pos(event) -> Pos:
    mark = event.start_mark
    return Pos(mark.line + 1, mark.column + 1)


def _mark(node) -> Pos:
    return Pos(node.start_mark.line + 1, node.start_mark.column + 1)


def _convert(node, path, src, errors, budget, loader, depth):
    budget[0] -= 1
    if budget[0] < 0:
        if budget[0] == -1:
            errors.append(
                Diagnostic(
                    src.path,
                    _mark(node),
                    f"aliases expand the document to more than {limits.NODES.value:,} values "
                    "(an alias bomb?), the limit for a spec",
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
        try:
            return loader.construct_object(node, deep=True)
        except Exception:  # an explicit tag the value does not fit: !!float abc, !!bool maybe
            kind = node.tag.removeprefix(_STD)
            errors.append(
                Diagnostic(
                    src.path, _mark(node), f"'{node.value[:40]}' is not a valid {kind} (!!{kind})"
                )
            )
            return None
    if depth >= limits.DEPTH.value:  # aliases can nest deeper than the text does
        if not any(d.message == _too_deep() for d in errors):
            errors.append(Diagnostic(src.path, _mark(node), _too_deep()))
        return None
    if isinstance(node, yaml.SequenceNode):
        if node.tag != _STD + "seq":
            errors.append(Diagnostic(src.path, _mark(node), f"unsupported YAML tag '{node.tag}'"))
            return None
        return [
            _convert(child, path + (i,), src, errors, budget, loader, depth + 1)
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
            if len(key) > limits.KEY_LENGTH.value:
                errors.append(
                    Diagnostic(
                        src.path,
                        _mark(knode),
                        f"a key longer than {limits.KEY_LENGTH.value:,} characters",
                    )
                )
                continue
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
            out[key] = _convert(vnode, path + (key,), src, errors, budget, loader, depth + 1)
        return out
    errors.append(Diagnostic(src.path, _mark(node), "unsupported YAML node"))
    return None


# ----------------------------------------------------------------------------- TOML

_TOML_POS = re.compile(r"\(at line (\d+), column (\d+)\)")
_TOML_END = "(at end of document)"
# What the pre-scan sees: strings and comments (skipped), brackets (nesting), separators (one
# value each), and a run of dotted bare keys (nesting that takes no brackets).
_TOML_SCAN = re.compile(
    r'"""(?:\\.|[^\\])*?"""(?!")'
    r"|'''[\s\S]*?'''(?!')"
    r'|"(?:\\.|[^"\\\n])*"'
    r"|'[^'\n]*'"
    r"|#[^\n]*"
    r"|(?P<open>[\[{])|(?P<close>[\]}])|(?P<sep>[=,])"
    r"|(?P<dots>(?:[A-Za-z0-9_-]+[ \t]*\.[ \t]*){%d,})" % limits.DEPTH.default
)


def _load_toml(text: str, path: str) -> Source:
    _prescan_toml(text, path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        msg = str(e)
        m = _TOML_POS.search(msg)
        if m:
            pos = Pos(int(m.group(1)), int(m.group(2)))
        else:  # "(at end of document)": at the last character
            pos = _offset_pos(text, max(len(text.rstrip()) - 1, 0))
        msg = _TOML_POS.sub("", msg).replace(_TOML_END, "at the end of the file").strip()
        raise SpecError([Diagnostic(path, pos, f"invalid TOML: {msg}")]) from None
    src = Source(path, text, data)
    _TomlLocator(text, src).run()
    src.value_pos.setdefault((), _offset_pos(text, _WS_NL.match(text).end()))  # past comments
    return src


def _offset_pos(text: str, offset: int) -> Pos:
    line = text.count("\n", 0, offset)
    return Pos(line + 1, offset - (text.rfind("\n", 0, offset) + 1) + 1)


def _prescan_toml(text: str, path: str) -> None:
    """Refuse TOML nested too deeply or holding too many values before tomllib (which recurses
    per level and builds every value) reads it, at the bracket, value or key past the limit."""
    depth, values = 0, 0
    depth_limit, node_limit = limits.DEPTH.value, limits.NODES.value
    for m in _TOML_SCAN.finditer(text):
        kind = m.lastgroup
        if kind == "open":
            depth += 1
            if depth > depth_limit:
                raise SpecError([Diagnostic(path, _offset_pos(text, m.start()), _too_deep())])
        elif kind == "close":
            depth = max(depth - 1, 0)
        elif kind == "sep":
            values += 1
            if values > node_limit:
                raise SpecError([Diagnostic(path, _offset_pos(text, m.start()), _too_many())])
        elif kind == "dots":
            raise SpecError([Diagnostic(path, _offset_pos(text, m.start()), _too_deep())])


_WS = re.compile(r"(?:[ \t\r]+|#[^\n]*)*")
_WS_NL = re.compile(r"(?:[ \t\r\n]+|#[^\n]*)*")
# A string of any of TOML's four kinds (a multi-line one may end in up to two more quotes).
_STRING = re.compile(
    r'"""(?:\\.|[^\\])*?"""(?!")'
    r"|'''[\s\S]*?'''(?!')"
    r'|"(?:\\.|[^"\\])*"'
    r"|'[^']*'"
)
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_SCALAR = re.compile(r"[^,\]\}\n#]*")


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
        self.i = (_WS_NL if newlines else _WS).match(self.t, self.i).end()

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
                m = _STRING.match(self.t, self.i)
                keys.append(tomllib.loads(f"k = {m.group(0)}")["k"])
                self.i = m.end()
            else:
                m = _BARE_KEY.match(self.t, self.i)
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
        elif self.peek('"') or self.peek("'"):
            self.i = _STRING.match(self.t, self.i).end()
        else:
            m = _SCALAR.match(self.t, self.i)
            self.i = m.end()
