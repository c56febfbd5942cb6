"""The limits that keep `specc check` quick and small on any input (docs/security.md).

A spec is a few hundred lines; these bounds sit far above that and far below what would take
seconds or gigabytes. Each is checked before the work it bounds, and its message says the
limit. The two a real model may outgrow (expanded layers, data generated at compile time) can
be raised with an environment variable, which the person running specc sets, never the spec.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .diagnostics import UserError


@dataclass(frozen=True)
class Limit:
    what: str  # what is counted, for the message: "expanded layers"
    default: int
    env: str | None = None  # the variable that raises it; None: fixed

    @property
    def value(self) -> int:
        raw = os.environ.get(self.env) if self.env else None
        if raw is None or not raw.strip():
            return self.default
        try:
            value = int(raw)
        except ValueError:
            value = 0
        if value < 1:
            raise UserError(f"{self.env} must be a positive whole number, got {raw!r}")
        return value

    def exceeded(self, what: str) -> str:
        """'WHAT, more than the limit of N (set ENV=M to raise it)'."""
        text = f"{what}, more than the limit of {self.value:,}"
        return text + (f" (set {self.env}=N to raise it)" if self.env else "")


FILE_BYTES = Limit("bytes in a spec file", 1_000_000)
# Values in the parsed document, aliases expanded (the largest example spec has about 300).
NODES = Limit("values in a spec", 20_000)
DEPTH = Limit("levels of nesting", 32)
KEY_LENGTH = Limit("characters in a key", 1_000)
LAYERS = Limit("expanded layers", 4_096, "SPECC_MAX_LAYERS")
# Data generated at compile time (seq2seq pairs, generated texts): examples, and the values
# (tokens, pixels) they hold together.
GENERATED_EXAMPLES = Limit("generated examples", 20_000, "SPECC_MAX_GENERATED")
GENERATED_VALUES = Limit("generated values", 3_000_000, "SPECC_MAX_GENERATED_VALUES")
# Cell equations (cells:): characters per equation and depth of one expression.
EQUATION_CHARS = Limit("characters in an equation", 2_000)
EXPRESSION_DEPTH = Limit("levels of nesting in an expression", 64)

INT_MAX = 2**63 - 1  # integers must fit int64: torch, numpy and ONNX all store them so
