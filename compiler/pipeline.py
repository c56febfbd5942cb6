"""One direction through the compiler: load -> spec -> checks -> shapes -> ir. No torch here."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from .checks import check
from .ir import ModelIR, build_ir
from .load import load_file
from .plan import TrainPlan, plan
from .shapes import Inferred, infer
from .spec import Parsed, parse


@dataclass(frozen=True)
class Compiled:
    path: Path
    sha256: str
    parsed: Parsed
    inferred: Inferred
    plan: TrainPlan
    ir: ModelIR
    overrides: tuple = ()

    @property
    def spec(self):
        return self.parsed.spec


def compile_file(path: str | Path, overrides: list[str] | tuple = ()) -> Compiled:
    """Raise SpecError with every located problem, or return the compiled spec.

    `overrides` are `KEY=VALUE` strings (from `--set`); they are part of the spec's identity, so
    the sha256 that checkpoints carry covers them too.
    """
    src = load_file(path)
    if overrides:
        from .overrides import apply

        apply(src, list(overrides))
    parsed = parse(src)
    order = check(parsed)
    inferred = infer(parsed, order)
    training = plan(parsed, inferred)
    identity = src.text + "".join(f"\n# --set {o}" for o in overrides)
    sha = hashlib.sha256(identity.encode("utf-8")).hexdigest()
    ir = build_ir(parsed, inferred, training, sha, Path(path).name)
    return Compiled(Path(path), sha, parsed, inferred, training, ir, tuple(overrides))
