"""Cross-field rules pydantic cannot see: unique names, `from:` references that resolve, no cycles.

Returns the layers in an order where every layer comes after what it reads (the file order
whenever that already holds), which is the order of the generated forward().
"""

from __future__ import annotations

from .diagnostics import SpecError, did_you_mean
from .spec import Parsed


def check(parsed: Parsed) -> list[int]:
    spec, src, origins = parsed.spec, parsed.source, parsed.origins
    errors = []
    first_seen: dict[str, int] = {}
    for i, layer in enumerate(spec.model):
        if layer.name in spec.inputs:
            errors.append(
                src.error(
                    origins[i].path + ("name",),
                    f"layer name '{layer.name}' is already a model input",
                )
            )
        elif layer.name in first_seen:
            other = src.pos(origins[first_seen[layer.name]].path)
            hint = f"first used at line {other.line}" if other else None
            errors.append(
                src.error(origins[i].path + ("name",), f"duplicate layer name '{layer.name}'", hint)
            )
        else:
            first_seen[layer.name] = i
    known = set(first_seen) | set(spec.inputs)
    duplicates = {i for i, layer in enumerate(spec.model) if first_seen.get(layer.name) != i}
    for i, layer in enumerate(spec.model):
        if i in duplicates:
            continue
        for j, ref in enumerate(layer.from_ or []):
            if ref not in known:
                where = origins[i].path + (
                    "from",
                    j,
                )  # falls back to the key when from: is a bare string
                errors.append(
                    src.error(
                        where, f"'from: {ref}' names no layer or input", did_you_mean(ref, known)
                    )
                )
            elif ref == layer.name:
                errors.append(
                    src.error(origins[i].path + ("from",), f"layer '{ref}' reads its own output")
                )
    errors += _task_rules(parsed)
    if parsed.spec.task == "language_model":
        errors += _language_model_rules(parsed)
    if not errors:
        errors += _state_source_rules(parsed, first_seen)
    if parsed.spec.task == "seq2seq" and not errors:
        errors += _seq2seq_rules(parsed, first_seen)
    errors += _cell_rules(parsed)
    if errors:
        raise SpecError(errors)
    return _order(parsed, first_seen)


def _task_rules(parsed: Parsed):
    spec, src = parsed.spec, parsed.source
    errors = []
    if spec.data is not None and spec.data.standardize:
        if len(spec.inputs) != 1 or next(iter(spec.inputs.values())).dtype != "float32":
            errors.append(
                src.error(
                    ("data", "standardize"), "standardize needs a model with one float32 input"
                )
            )
    if (
        spec.task == "classification"
        and spec.labels is not None
        and len(set(spec.labels)) != len(spec.labels)
    ):
        errors.append(src.error(("labels",), "labels must be distinct"))
    return errors


# Layers that compute each time step from that step alone: with unidirectional recurrent
# layers they make a model causal, so it can run one token at a time (the step graph).
PER_STEP = {
    "embedding", "linear", "dropout", "relu", "tanh", "sigmoid", "gelu", "elu", "leaky_relu",
    "layernorm", "softmax", "log_softmax", "identity", "add", "concat",
}  # fmt: skip
RECURRENT = {"rnn", "lstm", "gru", "recurrent"}


def _language_model_rules(parsed: Parsed) -> list:
    """A language model reads tokens left to right and predicts one token per position."""
    spec, src, origins = parsed.spec, parsed.source, parsed.origins
    errors = []
    first = next(iter(spec.inputs.values()))
    if first.dtype != "int64" or len(first.shape) != 1 or isinstance(first.shape[0], int):
        errors.append(
            src.error(
                ("inputs",),
                "a language model reads token ids: its first input must be "
                "{shape: [time], dtype: int64}",
            )
        )
    for i, layer in enumerate(spec.model):
        if layer.type in RECURRENT:
            errors += _step_by_step(
                src,
                layer,
                origins[i].path,
                "a language model",
                "predict",
                "set bidirectional: false",
            )
        elif layer.type not in PER_STEP:
            errors.append(
                src.error(
                    origins[i].path + ("type",),
                    f"{layer.name}: a {layer.type} layer mixes time steps; a language model "
                    "can only use recurrent layers and layers that act on each step alone",
                )
            )
    return errors


def _step_by_step(src, layer, path: tuple, who: str, verb: str, hint: str) -> list:
    """A recurrent layer of a model that runs one token at a time (a language model, a seq2seq
    decoder): left to right only, with an output at every step."""
    errors = []
    if getattr(layer, "bidirectional", False):
        errors.append(
            src.error(
                path + ("bidirectional",),
                f"{layer.name}: {who} {verb}s each token from the ones before it; "
                f"a bidirectional layer would read the tokens it has to {verb}",
                hint,
            )
        )
    if layer.output != "sequence":
        errors.append(
            src.error(
                path + ("output",),
                f"{layer.name}: {who} needs a prediction at every position",
                "set output: sequence",
            )
        )
    return errors


def _state_source_rules(parsed: Parsed, index: dict[str, int]) -> list:
    """`initial_state: {from: X}`: X is a seq2seq encoder layer; the layer learns what X gives."""
    spec, src, origins = parsed.spec, parsed.source, parsed.origins
    errors = []
    for i, layer in enumerate(spec.model):
        name = getattr(layer, "state_from", None)
        if name is None:
            continue
        where = origins[i].path + ("initial_state",)
        if spec.task != "seq2seq" or origins[i].path[0] != "decoder":
            errors.append(
                src.error(
                    where, "initial_state: {from: ...} starts a seq2seq decoder from its encoder"
                )
            )
            continue
        source_index = index.get(name)
        if source_index is None or origins[source_index].path[0] != "encoder":
            errors.append(
                src.error(
                    where + ("from",),
                    f"'{name}' is not an encoder layer",
                    did_you_mean(
                        name, [n for n, k in index.items() if origins[k].path[0] == "encoder"]
                    ),
                )
            )
            continue
        source = spec.model[source_index]
        recurrent = source.type in ("rnn", "lstm", "gru")
        layer._state_source = {
            "recurrent": recurrent,
            "type": source.type,
            "num_layers": getattr(source, "num_layers", 1),
            "hidden_size": getattr(source, "hidden_size", None),
            "directions": 2 if getattr(source, "bidirectional", False) else 1,
        }
    return errors


CROSS = {"attention", "multihead_attention"}  # per step when they attend over the encoder only


def _seq2seq_rules(parsed: Parsed, index: dict[str, int]) -> list:
    """The encoder reads the source; the decoder reads target tokens left to right, the encoder's
    layers, and the source's lengths. Every decoder layer must work one step at a time."""
    spec, src, origins = parsed.spec, parsed.source, parsed.origins
    errors = []
    section = {layer.name: origins[i].path[0] for i, layer in enumerate(spec.model)}
    section["target_in"] = "decoder"
    has_cache = any(
        layer.type == "transformer_decoder_layer"
        for i, layer in enumerate(spec.model)
        if origins[i].path[0] == "decoder"
    )
    for i, layer in enumerate(spec.model):
        here, path = origins[i].path[0], origins[i].path
        refs = layer.from_ or []
        if here == "encoder":
            bad = [r for r in refs if section.get(r) == "decoder"]
            if bad:
                errors.append(
                    src.error(
                        path + ("from",),
                        f"{layer.name}: the encoder cannot read the decoder's '{bad[0]}'",
                    )
                )
            continue
        encoder_refs = [r for r in refs if section.get(r) == "encoder"]
        if layer.type in RECURRENT:
            errors += _step_by_step(
                src, layer, path, "the decoder", "write", "make the encoder bidirectional instead"
            )
        elif layer.type in CROSS:
            if len(refs) - bool(layer.lengths) < 2 or refs[1] not in encoder_refs:
                errors.append(
                    src.error(
                        path + ("from",),
                        f"{layer.name}: in the decoder, {layer.type} attends over an encoder layer: from: [query, ENCODER_LAYER]",
                        "self-attention over the target needs transformer_decoder_layer (causal, with a cache)",
                    )
                )
        elif layer.type == "transformer_decoder_layer":
            if len(refs) < 2 or refs[1] not in encoder_refs:
                errors.append(
                    src.error(
                        path + ("from",),
                        f"{layer.name}: its memory must be an encoder layer: from: [x, ENCODER_LAYER]",
                    )
                )
            if not layer.causal:
                errors.append(
                    src.error(
                        path + ("causal",),
                        f"{layer.name}: a decoder's self-attention must be causal",
                    )
                )
        elif layer.type == "positional_encoding":
            if not has_cache:
                errors.append(
                    src.error(
                        path + ("type",),
                        "positional_encoding in a decoder goes with transformer_decoder_layer "
                        "(its cache tells each step its position); a recurrent decoder knows the order already",
                    )
                )
        elif layer.type not in PER_STEP:
            errors.append(
                src.error(
                    path + ("type",),
                    f"{layer.name}: a {layer.type} layer mixes time steps; a decoder writes one token at a time",
                )
            )
        elif encoder_refs:
            errors.append(
                src.error(
                    path + ("from",),
                    f"{layer.name}: a {layer.type} layer in the decoder cannot read the encoder's '{encoder_refs[0]}'",
                )
            )
    return errors


def _cell_rules(parsed: Parsed):
    """Parse and shape-check every cell's equations; errors at their line and column."""
    from .cells import check as check_cell
    from .diagnostics import Diagnostic, Pos

    src, errors = parsed.source, []
    lines = src.text.splitlines()
    for name, cell in parsed.spec.cells.items():
        sizes = {p: list(d) for p, d in cell.params.items()}
        _, problems = check_cell(
            name, cell.input, dict(cell.state), sizes, cell.equations, cell.output, cell.input_size
        )
        for index, problem in problems:
            if index is None:
                errors.append(
                    src.error(("cells", name), f"cell '{name}': {problem.message}", problem.hint)
                )
                continue
            where = src.pos(("cells", name, "equations", index))
            if where is not None and where.line <= len(lines):
                quoted = lines[where.line - 1][where.col - 1 : where.col] in ("'", '"')
                where = Pos(where.line, where.col + problem.col + quoted)
            errors.append(
                Diagnostic(src.path, where, f"cell '{name}': {problem.message}", problem.hint)
            )
    return errors


def _order(parsed: Parsed, index: dict[str, int]) -> list[int]:
    """Topological order, stable with respect to the file; a cycle is a located error."""
    spec = parsed.spec
    deps = [{index[r] for r in (layer.from_ or []) if r in index} for layer in spec.model]
    done: list[int] = []
    placed: set[int] = set()
    state: dict[int, str] = {}

    def visit(i: int, trail: list[int]):
        if i in placed:
            return
        if state.get(i) == "open":
            cycle = trail[trail.index(i) :] + [i]
            names = " -> ".join(spec.model[k].name for k in cycle)
            raise SpecError(
                [
                    parsed.source.error(
                        parsed.origins[i].path + ("from",), f"layers form a cycle: {names}"
                    )
                ]
            )
        state[i] = "open"
        for d in sorted(deps[i]):
            visit(d, trail + [i])
        state[i] = "done"
        placed.add(i)
        done.append(i)

    for i in range(len(spec.model)):
        visit(i, [])
    return done
