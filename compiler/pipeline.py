"""One direction through the compiler: load -> spec (-> text vocabulary) -> checks -> shapes -> ir.

No torch here. Text data is read at compile time because layer sizes may depend on it
(`num_embeddings: vocab`); the result rides along in `Compiled.text` for the data stage.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from . import text as text_data
from .checks import check
from .diagnostics import DataProblem, SpecError
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
    text: text_data.TextSet | None = None

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
    text = _read_text(parsed, Path(path))
    order = check(parsed)
    inferred = infer(parsed, order)
    training = plan(parsed, inferred)
    identity = src.text + "".join(f"\n# --set {o}" for o in overrides)
    sha = hashlib.sha256(identity.encode("utf-8")).hexdigest()
    ir = build_ir(parsed, inferred, training, sha, Path(path).name)
    return Compiled(Path(path), sha, parsed, inferred, training, ir, tuple(overrides), text)


VOCAB_FIELDS = ("num_embeddings", "out_features")


def _read_text(parsed: Parsed, path: Path) -> text_data.TextSet | None:
    """Read text data and put its vocabulary size where a layer says `vocab`."""
    spec, src = parsed.spec, parsed.source
    wants = [
        (i, field)
        for i, layer in enumerate(spec.model)
        for field in VOCAB_FIELDS
        if getattr(layer, field, None) == "vocab"
    ]
    if spec.data is None or spec.data.type != "text":
        if wants:
            raise SpecError(
                [
                    src.error(
                        parsed.origins[i].path + (field,),
                        f"{field}: vocab needs text data to take the vocabulary from",
                        "add data: {type: text, path: ...}, or give the size as a number",
                    )
                    for i, field in wants
                ]
            )
        return None
    try:
        text = text_data.load(spec.data, path.resolve().parent, spec.train.seed, spec.labels)
    except DataProblem as p:
        where = ("data", p.field) if p.field else ("data",)
        raise SpecError([src.error(where, p.message, p.hint)]) from None
    for i, field in wants:
        setattr(spec.model[i], field, len(text.vocab))
    return text
