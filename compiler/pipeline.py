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
    text: object = None  # text_data.TextSet, or pairs.PairSet for seq2seq

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
VOCAB_OF = {"text": ("vocab",), "pairs": ("source_vocab", "target_vocab")}


def _read_text(parsed: Parsed, path: Path):
    """Read text data (or seq2seq pairs) and put vocabulary sizes where a layer names them."""
    spec, src = parsed.spec, parsed.source
    wants = [
        (i, field, getattr(layer, field))
        for i, layer in enumerate(spec.model)
        for field in VOCAB_FIELDS
        if isinstance(getattr(layer, field, None), str)
    ]
    kind = spec.data.type if spec.data is not None else None
    allowed = VOCAB_OF.get(kind, ())
    wrong = [(i, field, name) for i, field, name in wants if name not in allowed]
    if wrong:
        raise SpecError(
            [
                src.error(
                    parsed.origins[i].path + (field,),
                    f"{field}: {name} needs "
                    + ("seq2seq pairs (data: {type: pairs})" if name != "vocab" else "text data")
                    + " to take the vocabulary from",
                    "give the size as a number"
                    if not allowed
                    else f"with this data, write {' or '.join(allowed)}",
                )
                for i, field, name in wrong
            ]
        )
    if kind not in VOCAB_OF:
        return None
    if kind == "pairs" and spec.task != "seq2seq":
        raise SpecError(
            [src.error(("data", "type"), "pairs train a seq2seq model (task: seq2seq)")]
        )
    try:
        if kind == "pairs":
            from . import pairs as pairs_data

            text = pairs_data.load(spec.data, path.resolve().parent, spec.train.seed)
        else:
            text = text_data.load(spec.data, path.resolve().parent, spec.train.seed, spec.labels)
    except DataProblem as p:
        where = ("data", p.field) if p.field else ("data",)
        raise SpecError([src.error(where, p.message, p.hint)]) from None
    sizes = {"vocab": getattr(text, "vocab", None)}
    if kind == "pairs":
        sizes = {"source_vocab": text.source_vocab, "target_vocab": text.target_vocab}
    missing = [(i, f, n) for i, f, n in wants if sizes.get(n) is None]
    if missing:
        i, field, name = missing[0]
        raise SpecError(
            [
                src.error(
                    parsed.origins[i].path + (field,),
                    f"{field}: {name}: the source is an image, it has no vocabulary",
                )
            ]
        )
    for i, field, name in wants:
        setattr(spec.model[i], field, len(sizes[name]))
    if kind == "pairs":
        _check_positions(parsed, text)
    return text


def _check_positions(parsed: Parsed, pairs) -> None:
    """A learned position table must cover the longest source (encoder) or target (decoder)."""
    spec, src = parsed.spec, parsed.source
    errors = []
    for i, layer in enumerate(spec.model):
        if layer.type != "positional_encoding" or layer.kind != "learned":
            continue
        side = parsed.origins[i].path[0]
        longest = pairs.longest_source if side == "encoder" else pairs.longest_target + 1
        if longest > layer.max_len:
            what = "source" if side == "encoder" else "target (with <bos>)"
            errors.append(
                src.error(
                    parsed.origins[i].path + ("max_len",),
                    f"the longest {what} has {longest} tokens, but the learned position table "
                    f"has {layer.max_len} rows",
                    f"set max_len to at least {longest}, or use kind: sinusoidal",
                )
            )
    if errors:
        raise SpecError(errors)
