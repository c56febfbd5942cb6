"""Cross-field rules pydantic cannot see: unique names, `from:` references that resolve, no cycles.

Returns the layers in an order where every layer comes after what it reads (the file order
whenever that already holds), which is the order of the generated forward().
"""

from __future__ import annotations

from . import weights
from .diagnostics import SpecError, did_you_mean
from .layers.recurrent import Recurrent
from .spec import Parsed


def check(parsed: Parsed) -> list[int]:
    errors = _name_rules(parsed)
    index = _index(parsed)
    errors += _reference_rules(parsed, index)
    errors += _data_rules(parsed)
    errors += parsed.task.check(parsed)
    errors += _state_source_rules(parsed)
    errors += _cell_rules(parsed)
    errors += weights.name_rules(parsed)  # train.freeze and optimizer.groups
    if errors:
        raise SpecError(errors)
    return _order(parsed, index)


def _index(parsed: Parsed) -> dict[str, int]:
    """Each layer name -> the first layer that has it."""
    index: dict[str, int] = {}
    for i, layer in enumerate(parsed.layers):
        index.setdefault(layer.name, i)
    return index


def _name_rules(parsed: Parsed) -> list:
    """Layer names are unique and differ from the inputs'."""
    src, origins = parsed.source, parsed.origins
    errors, first_seen = [], {}
    for i, layer in enumerate(parsed.layers):
        if layer.name in parsed.inputs:
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
    return errors


def _reference_rules(parsed: Parsed, index: dict[str, int]) -> list:
    """Every `from:` names a layer or an input, and no layer reads its own output."""
    src, origins = parsed.source, parsed.origins
    known = set(index) | set(parsed.inputs)
    errors = []
    for i, layer in enumerate(parsed.layers):
        if index[layer.name] != i:
            continue  # a duplicate name: already reported
        for j, ref in enumerate(layer.from_ or []):
            if ref not in known:
                where = origins[i].path + ("from", j)  # the key itself when from: is one name
                errors.append(
                    src.error(
                        where, f"'from: {ref}' names no layer or input", did_you_mean(ref, known)
                    )
                )
            elif ref == layer.name:
                errors.append(
                    src.error(origins[i].path + ("from",), f"layer '{ref}' reads its own output")
                )
    return errors


def _data_rules(parsed: Parsed) -> list:
    spec = parsed.spec
    if spec.data is None or not spec.data.standardize:
        return []
    if len(spec.inputs) != 1 or next(iter(spec.inputs.values())).dtype != "float32":
        return [
            parsed.source.error(
                ("data", "standardize"), "standardize needs a model with one float32 input"
            )
        ]
    return []


def _state_source_rules(parsed: Parsed) -> list:
    """`initial_state: {from: ...}` is for tasks whose decoder starts from an encoder."""
    if parsed.task.takes_state_sources:
        return []  # the task binds and checks them (Task.bind)
    return [
        parsed.source.error(
            origin.path + ("initial_state",),
            "initial_state: {from: ...} starts a seq2seq decoder from its encoder",
        )
        for layer, origin in zip(parsed.layers, parsed.origins, strict=True)
        if layer.state_from
    ]


def _cell_rules(parsed: Parsed):
    """Every `recurrent` layer names a cell; every cell's equations parse and fit their shapes
    (errors at their line and column)."""
    from .cells import check as check_cell
    from .diagnostics import Diagnostic, Pos

    src, errors = parsed.source, []
    cells = parsed.spec.cells
    for layer, origin in zip(parsed.layers, parsed.origins, strict=True):
        if isinstance(layer, Recurrent) and layer.cell not in cells:
            hint = did_you_mean(layer.cell, cells) or (
                f"cells: {', '.join(cells)}" if cells else "define it under cells:"
            )
            errors.append(src.error(origin.path + ("cell",), f"no cell named '{layer.cell}'", hint))
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
    layers = parsed.layers
    deps = [{index[r] for r in (layer.from_ or []) if r in index} for layer in layers]
    done: list[int] = []
    placed: set[int] = set()
    state: dict[int, str] = {}

    def visit(i: int, trail: list[int]):
        if i in placed:
            return
        if state.get(i) == "open":
            cycle = trail[trail.index(i) :] + [i]
            names = " -> ".join(layers[k].name for k in cycle)
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

    for i in range(len(layers)):
        visit(i, [])
    return done
