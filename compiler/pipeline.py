"""One direction through the compiler: load -> parse -> check -> resolve -> shapes -> plan -> ir.

No torch here. Text data is read at compile time because layer sizes may depend on it
(`num_embeddings: vocab`); the result rides along in `Compiled.text` for the data stage.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from .checks import check
from .ir import ModelIR, build_ir
from .load import load_file
from .plan import TrainPlan, plan
from .resolve import resolve
from .run_folder import run_identity
from .shapes import Inferred, infer
from .spec import Parsed, parse
from .tasks import foreign_train_keys


@dataclass(frozen=True)
class Compiled:
    path: Path
    sha256: str
    parsed: Parsed  # resolved: layers carry their vocabulary sizes, cells and state sources
    inferred: Inferred
    plan: TrainPlan
    ir: ModelIR
    overrides: tuple = ()
    text: object = None  # text.TextSet, or pairs.PairSet for seq2seq
    identity: str = ""  # sha256 of the spec without what a resume may change (run_folder.py)

    @property
    def spec(self):
        return self.parsed.spec

    @property
    def task(self):
        return self.parsed.task


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
    parsed, text = resolve(
        parsed, {layer.name: i for i, layer in enumerate(parsed.layers)}, Path(path)
    )
    inferred = infer(parsed, order)
    training = plan(parsed, inferred)
    text_and_overrides = src.text + "".join(f"\n# --set {o}" for o in overrides)
    sha = hashlib.sha256(text_and_overrides.encode("utf-8")).hexdigest()
    identity, _ = run_identity(spec_doc(parsed))
    ir = build_ir(parsed, inferred, training, sha, Path(path).name, identity)
    return Compiled(
        Path(path), sha, parsed, inferred, training, ir, tuple(overrides), text, identity
    )


def spec_doc(parsed: Parsed) -> dict:
    """The spec as validated, defaults filled in, as JSON data: a spec of its own (spec.json)."""
    return parsed.spec.model_dump(
        mode="json",
        by_alias=True,
        exclude_none=True,
        exclude={"train": foreign_train_keys(parsed.task)},
    )
