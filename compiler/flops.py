"""FLOPs per example, from the inferred shapes: what `specc check --json` reports per layer and
in total, and what the benchmarks divide by time to get achieved GFLOP/s.

A multiply-add counts as 2 operations. Named dims (time, ...) take the sizes given; a dim the
caller does not size takes 1 (one step), which the result says.
"""

from __future__ import annotations

import ast
import operator

from .shapes import Inferred
from .spec import Parsed

OPERATORS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.FloorDiv: operator.floordiv,
}


def concrete(dim, sizes: dict[str, int]) -> int:
    """A dimension as a number: an int, a named dim, or an expression of them (`(time - 2) // 1 + 1`)."""
    if isinstance(dim, int):
        return dim
    return _evaluate(ast.parse(str(dim), mode="eval").body, sizes)


def _evaluate(node, sizes: dict[str, int]) -> int:
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return node.value
    if isinstance(node, ast.Name):
        return sizes.get(node.id, 1)
    if isinstance(node, ast.BinOp) and type(node.op) in OPERATORS:
        return OPERATORS[type(node.op)](_evaluate(node.left, sizes), _evaluate(node.right, sizes))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_evaluate(node.operand, sizes)
    raise ValueError(f"not a dimension expression: {ast.unparse(node)}")


def dynamic_dims(parsed: Parsed) -> list[str]:
    return list(
        dict.fromkeys(d for i in parsed.inputs.values() for d in i.shape if isinstance(d, str))
    )


def layer_flops(parsed: Parsed, inferred: Inferred, sizes: dict[str, int]) -> dict[int, int]:
    """{layer index: FLOPs of one example} with the named dims at `sizes` (1 where not given)."""
    out = {}
    for i in inferred.order:
        layer = parsed.layers[i]
        shapes = [tuple(concrete(d, sizes) for d in s) for s in inferred.in_shapes[i]]
        result = tuple(concrete(d, sizes) for d in inferred.out_shapes[layer.name])
        out[i] = int(layer.flops(shapes, result))
    return out
