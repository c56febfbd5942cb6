"""One direction through the compiler: load -> spec -> checks -> shapes -> ir. No torch here."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from .checks import check
from .ir import ModelIR, build_ir
from .load import load_file
from .shapes import Inferred, infer
from .spec import Parsed, parse


@dataclass(frozen=True)
class Compiled:
    path: Path
    sha256: str
    parsed: Parsed
    inferred: Inferred
    ir: ModelIR

    @property
    def spec(self):
        return self.parsed.spec


def compile_file(path: str | Path) -> Compiled:
    """Raise SpecError with every located problem, or return the compiled spec."""
    src = load_file(path)
    parsed = parse(src)
    order = check(parsed)
    inferred = infer(parsed, order)
    sha = hashlib.sha256(src.text.encode("utf-8")).hexdigest()
    return Compiled(
        Path(path), sha, parsed, inferred, build_ir(parsed, inferred, sha, Path(path).name)
    )
