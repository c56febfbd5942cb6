"""User-facing errors: every problem a user can cause becomes `path:line:col: error: message`.

Stages raise `SpecError` with a list of `Diagnostic`s (all problems of a file at once);
the CLI prints them and exits 1. Anything else the user did wrong outside a spec file
(a missing checkpoint, a bad input array) is a plain `UserError` with one message.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Pos:
    """1-based line and column in the source file."""

    line: int
    col: int


@dataclass(frozen=True)
class Diagnostic:
    path: str
    pos: Pos | None
    message: str
    hint: str | None = None
    severity: str = "error"

    def as_json(self) -> dict:
        return {
            "file": self.path,
            "line": self.pos.line if self.pos else None,
            "col": self.pos.col if self.pos else None,
            "severity": self.severity,
            "message": self.message,
            "notes": [self.hint] if self.hint else [],
        }

    def format(self) -> str:
        where = f"{self.path}:{self.pos.line}:{self.pos.col}" if self.pos else self.path
        where = printable(where)
        text = f"{where}: {self.severity}: {printable(self.message)}"
        if self.hint:
            text += f"\n{where}: note: {printable(self.hint)}"
        return text


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def printable(text: str) -> str:
    """Control characters (a newline, a terminal escape) written as escapes: a spec's keys and
    values are echoed in messages, and must not start a line of their own or drive a terminal."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


class UserError(Exception):
    """A mistake the user can fix; printed as `error: <message>` without a traceback."""


@dataclass
class SpecError(UserError):
    diagnostics: list[Diagnostic] = field(default_factory=list)

    def __str__(self) -> str:
        return "\n".join(d.format() for d in self.diagnostics)


def did_you_mean(word: str, choices) -> str | None:
    """A 'did you mean' hint for a misspelled key, layer type or name, or None."""
    close = difflib.get_close_matches(str(word), sorted(map(str, choices)), n=1, cutoff=0.5)
    return f"did you mean '{close[0]}'?" if close else None


class DataProblem(Exception):
    """Something wrong with the data; `field` is the key under `data:` to point at."""

    def __init__(self, field: str | None, message: str, hint: str | None = None):
        super().__init__(message)
        self.field, self.message, self.hint = field, message, hint
