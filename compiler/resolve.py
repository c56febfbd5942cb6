"""Resolution: the values layers take from outside their own keys, as new layers.

After the checks, some layer values are still names: `num_embeddings: vocab` (a size the text
data decides), a `recurrent` layer's `cell:` (defined under `cells:`), a decoder's
`initial_state: {from: ...}` (what another layer gives). This stage reads the text data that
compile time needs and returns a new `Parsed` whose layers carry those values; the validated
spec is never written to.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from .diagnostics import DataProblem, SpecError
from .layers.base import VOCABS
from .layers.recurrent import Recurrent
from .spec import Parsed
from .tasks import TASKS

SIZED_BY_DATA = ("num_embeddings", "out_features")  # layer fields a vocabulary may size
VOCAB_OF = {"text": ("vocab",), "pairs": ("source_vocab", "target_vocab")}  # data type -> sizes


def resolve(parsed: Parsed, index: dict[str, int], spec_path: Path):
    """(the resolved Parsed, the text data read for it or None)."""
    layers = tuple(
        layer.bind(parsed.spec.cells[layer.cell]) if isinstance(layer, Recurrent) else layer
        for layer in parsed.layers
    )
    parsed = replace(parsed, layers=layers)
    layers, errors = parsed.task.bind(parsed, index)
    if errors:
        raise SpecError(errors)
    parsed = replace(parsed, layers=layers)
    text = read_text(parsed, spec_path)
    if text is not None:
        parsed = replace(parsed, layers=_sized(parsed, text))
        errors = parsed.task.check_data(parsed, text)
        if errors:
            raise SpecError(errors)
    return parsed, text


def _wants(parsed: Parsed) -> list[tuple[int, str, str]]:
    """(layer index, field, vocabulary name) for every size a layer leaves to the data."""
    return [
        (i, field, getattr(layer, field))
        for i, layer in enumerate(parsed.layers)
        for field in SIZED_BY_DATA
        if getattr(layer, field, None) in VOCABS
    ]


def read_text(parsed: Parsed, spec_path: Path):
    """Read text data (or seq2seq pairs) when the data is text; check who names a vocabulary."""
    spec, src = parsed.spec, parsed.source
    kind = spec.data.type if spec.data is not None else None
    allowed = VOCAB_OF.get(kind, ())
    wrong = [(i, f, name) for i, f, name in _wants(parsed) if name not in allowed]
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
    if kind not in parsed.task.data_types:
        owners = " or ".join(f"task: {t.name}" for t in TASKS.values() if kind in t.data_types)
        raise SpecError(
            [src.error(("data", "type"), f"{kind} data trains {owners}, not task: {spec.task}")]
        )
    base, seed = spec_path.resolve().parent, spec.train.seed
    try:
        if kind == "pairs":
            from . import pairs as pairs_data

            return pairs_data.load(spec.data, base, seed)
        from . import text as text_data

        return text_data.load(spec.data, base, seed, spec.labels)
    except DataProblem as p:
        where = ("data", p.field) if p.field else ("data",)
        raise SpecError([src.error(where, p.message, p.hint)]) from None


def _sized(parsed: Parsed, text) -> tuple:
    """The layers with every `vocab`-like size replaced by the vocabulary's size."""
    sizes = {"vocab": getattr(text, "vocab", None)}
    if parsed.spec.data.type == "pairs":
        sizes = {"source_vocab": text.source_vocab, "target_vocab": text.target_vocab}
    layers = list(parsed.layers)
    for i, field, name in _wants(parsed):
        if sizes.get(name) is None:
            raise SpecError(
                [
                    parsed.source.error(
                        parsed.origins[i].path + (field,),
                        f"{field}: {name}: the source is an image, it has no vocabulary",
                    )
                ]
            )
        layers[i] = layers[i].model_copy(update={field: len(sizes[name])})
    return tuple(layers)
