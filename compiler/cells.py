"""Custom recurrent cells written as equations: parsed (never `eval`), shape-checked, rendered
as a torch module.

    cells:
      mut1:
        state: {h: hidden}
        params: {W_xz: [hidden, input], b_z: [hidden], W_xr: [hidden, input], ...}
        equations:
          - z = sigmoid(W_xz @ x + b_z)
          - r = sigmoid(W_xr @ x + W_hr @ h + b_r)
          - h = tanh(W_hh @ (r * h) + tanh(x) + b_h) * z + h * (1 - z)

The language: `name = expression`, one per line, evaluated in order; `@` is a matrix-vector
product, `+ - *` work elementwise on vectors of one size (numbers broadcast), and `sigmoid`,
`tanh`, `relu` apply elementwise. Names are the input vector (`x` unless `input:` says
otherwise), the state vectors (assigning one sets its new value for the equations after it and
for the next step), declared parameters (`[rows, cols]` matrices or `[size]` vectors, sizes
`input`, `hidden` or numbers), and names earlier equations assigned. Every mistake is an error
at its line and column: unknown names (with a suggestion), size mismatches (saying both sizes),
matrices outside `@`, syntax errors.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass

from . import limits
from .diagnostics import did_you_mean
from .sanitize import RESERVED

FUNCTIONS = {"sigmoid": "torch.sigmoid", "tanh": "torch.tanh", "relu": "torch.relu"}
TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>[-+*@()=]))"
)


class CellError(Exception):
    """A mistake in one equation; `col` is the 0-based column within it."""

    def __init__(self, col: int, message: str, hint: str | None = None):
        super().__init__(message)
        self.col, self.message, self.hint = col, message, hint


# ----------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class Expr:
    kind: str  # num | name | call | neg | add | sub | mul | matmul
    col: int
    value: str = ""
    args: tuple = ()


def tokenize(text: str) -> list[tuple[str, str, int]]:
    most = limits.EQUATION_CHARS.value
    if len(text) > most:
        raise CellError(0, f"an equation longer than {most:,} characters, the limit for a cell")
    tokens, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = TOKEN.match(text, pos)
        if not m:
            col = len(text) - len(text[pos:].lstrip())
            raise CellError(col, f"unexpected character {text[col]!r}")
        kind = m.lastgroup
        tokens.append((kind, m.group(kind), m.start(kind)))
        pos = m.end()
    tokens.append(("end", "", len(text)))
    return tokens


class Parser:
    """equation := NAME '=' sum;  sum := product (('+'|'-') product)*;
    product := unary (('*'|'@') unary)*;  unary := '-' unary | atom;
    atom := NUMBER | NAME | NAME '(' sum ')' | '(' sum ')'"""

    def __init__(self, text: str):
        self.tokens, self.i = tokenize(text), 0
        self.depth: dict[int, int] = {}  # id(expression) -> its depth: checking recurses on it
        self.nesting = 0  # brackets, calls and minus signs open around the current token

    def node(self, kind: str, col: int, value: str = "", args: tuple = ()) -> Expr:
        """An expression, refused when it nests deeper than the limit (its checking and its
        rendering recurse once per level)."""
        expr = Expr(kind, col, value, args)
        depth = 1 + max((self.depth[id(a)] for a in args), default=0)
        if depth > limits.EXPRESSION_DEPTH.value:
            raise CellError(col, self.too_deep())
        self.depth[id(expr)] = depth
        return expr

    def enter(self, col: int) -> None:
        self.nesting += 1
        if self.nesting > limits.EXPRESSION_DEPTH.value:
            raise CellError(col, self.too_deep())

    @staticmethod
    def too_deep() -> str:
        most = limits.EXPRESSION_DEPTH.value
        return f"the expression nests more than {most} levels deep, the limit for a cell"

    def peek(self):
        return self.tokens[self.i]

    def take(self, value: str | None = None, kind: str | None = None):
        tok = self.tokens[self.i]
        if (value is not None and tok[1] != value) or (kind is not None and tok[0] != kind):
            want = repr(value) if value else {"name": "a name", "end": "the end"}.get(kind, kind)
            got = "the end of the equation" if tok[0] == "end" else repr(tok[1])
            raise CellError(tok[2], f"expected {want}, found {got}")
        self.i += 1
        return tok

    def equation(self) -> tuple[str, int, Expr]:
        _, target, col = self.take(kind="name")
        self.take("=")
        expr = self.sum()
        self.take(kind="end")
        return target, col, expr

    def sum(self) -> Expr:
        left = self.product()
        while self.peek()[1] in ("+", "-"):
            _, op, col = self.take()
            left = self.node("add" if op == "+" else "sub", col, args=(left, self.product()))
        return left

    def product(self) -> Expr:
        left = self.unary()
        while self.peek()[1] in ("*", "@"):
            _, op, col = self.take()
            left = self.node("mul" if op == "*" else "matmul", col, args=(left, self.unary()))
        return left

    def unary(self) -> Expr:
        if self.peek()[1] == "-":
            _, _, col = self.take()
            self.enter(col)
            inner = self.unary()
            self.nesting -= 1
            return self.node("neg", col, args=(inner,))
        return self.atom()

    def atom(self) -> Expr:
        kind, value, col = self.peek()
        if kind == "num":
            self.take()
            return self.node("num", col, value)
        if kind == "name":
            self.take()
            if self.peek()[1] == "(":
                self.take("(")
                self.enter(col)
                arg = self.sum()
                self.nesting -= 1
                self.take(")")
                return self.node("call", col, value, (arg,))
            return self.node("name", col, value)
        if value == "(":
            self.take("(")
            self.enter(col)
            inner = self.sum()
            self.nesting -= 1
            self.take(")")
            return inner
        got = "the end of the equation" if kind == "end" else repr(value)
        raise CellError(col, f"expected a name, number or '(', found {got}")


# ----------------------------------------------------------------------------- checking

# A shape: ("scalar",), ("vec", size) or ("mat", rows, cols); sizes are "input", "hidden" or ints.


def _show(shape) -> str:
    return {"scalar": "a number", "vec": "a vector of size {}", "mat": "a [{}, {}] matrix"}[
        shape[0]
    ].format(*shape[1:])


@dataclass(frozen=True)
class Equation:
    target: str
    target_col: int
    expr: Expr
    shape: tuple


@dataclass(frozen=True)
class Cell:
    name: str
    input: str
    state: dict  # name -> size
    params: dict  # name -> dims, e.g. ("hidden", "input")
    equations: tuple[Equation, ...]
    output: str


UNKNOWN = ("unknown",)  # the value of an equation that failed: later uses are not errors again


def check(
    name: str,
    input_name: str,
    state: dict,
    params: dict,
    equations: list[str],
    output,
    input_size: str = "input",
):
    """Parse and shape-check; returns (Cell, []) or (None, [(equation index or None, CellError)]).

    `input_size: hidden` declares that the input vector has the hidden size (MUT1 adds x to
    hidden-size vectors), so a layer using the cell must be fed inputs of that size.
    """
    clash = [n for n in (*state, *params) if n == input_name] + [n for n in state if n in params]
    if clash:
        return None, [
            (None, CellError(0, f"'{clash[0]}' is declared twice (input, state or parameter)"))
        ]
    env = {input_name: ("vec", input_size)}
    env |= {s: ("vec", size) for s, size in state.items()}
    kinds = {input_name: "input", **{s: "state" for s in state}}
    for p, dims in params.items():
        dims = [
            input_size if d == "input" else d for d in dims
        ]  # input_size: hidden makes them one
        env[p] = ("vec", dims[0]) if len(dims) == 1 else ("mat", dims[0], dims[1])
        kinds[p] = "parameter"
    checked, errors = [], []
    assigned = set()
    for i, text in enumerate(equations):
        try:
            target, col, expr = Parser(text).equation()
            if kinds.get(target) in ("input", "parameter"):
                raise CellError(col, f"cannot assign to the {kinds[target]} '{target}'")
            try:
                shape = _shape(expr, env)
            except CellError:
                env[target] = UNKNOWN
                raise
            if shape == UNKNOWN:
                env[target] = UNKNOWN
                continue
            if shape[0] != "vec":
                raise CellError(
                    expr.col, f"'{target}' would be {_show(shape)}; equations compute vectors"
                )
            if target in state and shape != env[target]:
                raise CellError(
                    expr.col,
                    f"state '{target}' has size {state[target]}, the right-hand side is {_show(shape)}",
                )
            env[target] = shape
            kinds.setdefault(target, "local")
            assigned.add(target)
            checked.append(Equation(target, col, expr, shape))
        except CellError as e:
            errors.append((i, e))
    if errors:
        return None, errors
    never = [s for s in state if s not in assigned]
    if never:
        return None, [(None, CellError(0, f"state '{never[0]}' is never updated by an equation"))]
    output = output or next(iter(state))
    if output not in env or env[output][0] != "vec" or kinds.get(output) in ("parameter",):
        return None, [
            (None, CellError(0, f"output '{output}' is not a vector the equations compute"))
        ]
    dims = {p: tuple(d) for p, d in params.items()}
    return Cell(name, input_name, dict(state), dims, tuple(checked), output), []


def _shape(e: Expr, env: dict) -> tuple:
    """The shape of an expression: ("scalar",), ("vec", size) or ("mat", rows, cols)."""
    if e.kind == "num":
        return ("scalar",)
    if e.kind == "name":
        if e.value not in env:
            raise CellError(e.col, f"'{e.value}' is not defined", did_you_mean(e.value, env))
        return env[e.value]
    if e.kind == "call" and e.value not in FUNCTIONS:
        raise CellError(
            e.col,
            f"unknown function '{e.value}'",
            did_you_mean(e.value, FUNCTIONS) or f"functions: {', '.join(FUNCTIONS)}",
        )
    shapes = [_shape(a, env) for a in e.args]
    if UNKNOWN in shapes:
        return UNKNOWN
    if e.kind in ("call", "neg"):
        return _elementwise_of_one(e, shapes[0])
    if e.kind == "matmul":
        return _matmul(e, *shapes)
    return _elementwise_of_two(e, *shapes)


def _elementwise_of_one(e: Expr, inner: tuple) -> tuple:
    """sigmoid(v), -v: a vector (or a number) keeps its shape; a matrix goes with @ only."""
    if inner[0] == "mat":
        if e.kind == "call":
            raise CellError(e.args[0].col, f"{e.value}() takes a vector, got {_show(inner)}")
        raise CellError(e.col, "a matrix can only be used with @")
    return inner


def _matmul(e: Expr, left: tuple, right: tuple) -> tuple:
    """[rows, cols] @ cols -> rows."""
    if left[0] != "mat":
        raise CellError(e.col, f"the left side of @ must be a matrix, it is {_show(left)}")
    if right[0] != "vec" or right[1] != left[2]:
        raise CellError(
            e.col,
            f"{_show(left)} @ {_show(right)}: the sizes do not match",
            f"the matrix has {left[2]} columns",
        )
    return ("vec", left[1])


def _elementwise_of_two(e: Expr, left: tuple, right: tuple) -> tuple:
    """+ - * of vectors of one size; a number broadcasts."""
    if "mat" in (left[0], right[0]):
        raise CellError(e.col, "a matrix can only be used with @ (elementwise needs vectors)")
    if left[0] == "scalar":
        return right
    if right[0] == "scalar" or left == right:
        return left
    op = {"add": "+", "sub": "-", "mul": "*"}[e.kind]
    raise CellError(e.col, f"{_show(left)} {op} {_show(right)}: the sizes differ")


# ----------------------------------------------------------------------------- rendering

PRECEDENCE = {"add": 1, "sub": 1, "mul": 2, "matmul": 2, "neg": 3}


def render(cell: Cell, class_name: str) -> str:
    """Python source of an nn.Module: __init__(input_size, hidden_size), forward(x, state)."""
    # x and h are reserved for model.py's forward chain, not inside a cell: keep them readable
    taken = (set(RESERVED) - {"x", "h"}) | {
        "self",
        "input_size",
        "hidden_size",
        "state",
        "bound",
        "p",
        "torch",
        "nn",
        "F",
    }
    py: dict[str, str] = {}
    for n in [cell.input, *cell.state, *cell.params, *(eq.target for eq in cell.equations)]:
        if n not in py:  # the spec's own name when Python allows it, else with a trailing _
            ident = n
            while ident in taken or keyword.iskeyword(ident) or ident.startswith("__"):
                ident += "_"
            taken.add(ident)
            py[n] = ident
    size = {"input": "input_size", "hidden": "hidden_size"}
    lines = [
        f"class {class_name}(nn.Module):",
        f'    """Recurrent cell {cell.name!r} from its equations; state: {", ".join(cell.state)}."""',
        "",
        "    def __init__(self, input_size: int, hidden_size: int) -> None:",
        "        super().__init__()",
    ]
    for p in cell.params:
        dims = ", ".join(str(size.get(d, d)) for d in cell.params[p])
        lines.append(f"        self.{py[p]} = nn.Parameter(torch.empty({dims}))")
    lines += [
        "        bound = hidden_size**-0.5  # as torch's RNN cells: uniform(-1/sqrt(hidden), 1/sqrt(hidden))",
        "        for p in self.parameters():",
        "            nn.init.uniform_(p, -bound, bound)",
        "",
        f"    def forward(self, {py[cell.input]}: torch.Tensor, state: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:",
        f'        """One step: input (batch, input_size), state ({", ".join(cell.state)}) -> new state."""',
        f"        {', '.join(py[s] for s in cell.state)}{',' if len(cell.state) == 1 else ''} = state",
    ]
    params = set(cell.params)
    for eq in cell.equations:
        lines.append(f"        {py[eq.target]} = {_code(eq.expr, py, params)}")
    lines.append(
        f"        return ({', '.join(py[s] for s in cell.state)}{',' if len(cell.state) == 1 else ''})"
    )
    return "\n".join(lines) + "\n"


def _code(e: Expr, py: dict, params: set, parent: int = 0) -> str:
    if e.kind == "num":
        return e.value
    if e.kind == "name":
        return f"self.{py[e.value]}" if e.value in params else py[e.value]
    if e.kind == "call":
        return f"{FUNCTIONS[e.value]}({_code(e.args[0], py, params)})"
    if e.kind == "matmul":  # W @ v for a batch of row vectors v: v W^T
        return f"F.linear({_code(e.args[1], py, params)}, {_code(e.args[0], py, params)})"
    mine = PRECEDENCE[e.kind]
    if e.kind == "neg":
        text = f"-{_code(e.args[0], py, params, mine)}"
    else:
        op = {"add": "+", "sub": "-", "mul": "*"}[e.kind]
        left = _code(e.args[0], py, params, mine)
        right = _code(e.args[1], py, params, mine + (e.kind == "sub"))
        text = f"{left} {op} {right}"
    return f"({text})" if mine < parent else text
