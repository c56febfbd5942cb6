"""What every layer type provides, and the small shared vocabulary they use.

A layer type is one pydantic model in its own file. Besides its fields it answers four
questions for the later stages, always from shapes already inferred (batch excluded):

- `infer(shapes)`: the output shape, or `ShapeError` with a message a user can act on;
- `param_count(shapes)`: exact number of trainable parameters;
- `module(shapes)`: Python source of the `nn.Module` it needs (None for a pure function);
- `call(module, args)`: Python source of the forward expression.

A dimension is an int, or a string: a named dynamic dim (`time`) or an expression of one.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PositiveInt

from ..sanitize import lit

Dim = Union[int, str]
Shape = tuple  # tuple[Dim, ...], batch excluded


class ShapeError(Exception):
    """A layer cannot take the shapes it is given; `field` points the error at one key."""

    def __init__(self, message: str, hint: str | None = None, field: str | None = None):
        super().__init__(message)
        self.message, self.hint, self.field = message, hint, field


def fmt_shape(shape: Shape) -> str:
    return "(" + ", ".join(["batch", *map(str, shape)]) + ")"


def _pair(v: Any) -> Any:
    if isinstance(v, bool):
        raise ValueError("expected an integer or a list of 2 integers")
    if isinstance(v, int):
        return (v, v)
    if (
        isinstance(v, (list, tuple))
        and len(v) == 2
        and all(isinstance(i, int) and not isinstance(i, bool) for i in v)
    ):
        return tuple(v)
    raise ValueError(f"expected an integer or a list of 2 integers, got {v!r}")


def _padding(v: Any) -> Any:
    if v == "same" or v == "valid":
        return v
    return _pair(v)


def _single(v: Any) -> Any:
    if isinstance(v, (list, tuple)) and len(v) == 1:
        v = v[0]
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(f"expected an integer, got {v!r}")
    return v


VOCABS = ("vocab", "source_vocab", "target_vocab")


def _size_or_vocab(v: Any) -> Any:
    if v in VOCABS:
        return v
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(
            f"expected an integer, 'vocab', 'source_vocab' or 'target_vocab', got {v!r}"
        )
    if v <= 0:
        raise ValueError(f"expected a size greater than 0, got {v}")
    return v


# A size that text data may set: a positive integer, or `vocab` (the vocabulary's size; a seq2seq
# model's data has two: source_vocab and target_vocab).
SizeOrVocab = Annotated[
    PositiveInt | Literal["vocab", "source_vocab", "target_vocab"],
    BeforeValidator(_size_or_vocab),
]
# json_schema_input_type: what a spec may write (`kernel_size: 5`), for `specc schema`.
Pair = Annotated[
    tuple[int, int], BeforeValidator(_pair, json_schema_input_type=int | tuple[int, int])
]
Padding2d = Annotated[
    Literal["same", "valid"] | tuple[int, int],
    BeforeValidator(
        _padding, json_schema_input_type=Literal["same", "valid"] | int | tuple[int, int]
    ),
]
Padding1d = Annotated[
    Literal["same", "valid"] | int,
    BeforeValidator(
        lambda v: v if v in ("same", "valid") else _single(v),
        json_schema_input_type=Literal["same", "valid"] | int | tuple[int],
    ),
]
Single = Annotated[int, BeforeValidator(_single, json_schema_input_type=int | tuple[int])]


class Layer(BaseModel):
    """Fields common to every layer. Frozen: later stages make changed copies, never edits."""

    model_config = ConfigDict(
        extra="forbid", populate_by_name=True, frozen=True, allow_inf_nan=False
    )

    type: str
    name: str | None = Field(
        None,
        description="Name to refer to this layer's output with `from:`; generated when absent.",
    )
    from_: Annotated[  # one name is short for a list of one (`from: input`)
        list[str] | None,
        BeforeValidator(
            lambda v: [v] if isinstance(v, str) else v,
            json_schema_input_type=str | list[str] | None,
        ),
    ] = Field(
        None,
        alias="from",
        description="Inputs by name (layer outputs or model inputs); default: the previous layer.",
    )
    repeat: PositiveInt = Field(1, description="Stack N copies of this layer in sequence.")

    arity: ClassVar[str] = "one"  # "one" input, or "many"
    doc_example: ClassVar[str] = ""
    doc_shapes: ClassVar[str] = ""  # input -> output, batch excluded, for the docs' layer table

    # What the layer is, as typed flags: the rules of tasks that run one step at a time (a
    # language model, a seq2seq decoder) and the IR read these, never lists of type names.
    per_step: ClassVar[bool] = False  # each time step's output depends on that step alone
    recurrent: ClassVar[bool] = False  # runs over time step by step, carrying a state
    torch_recurrent: ClassVar[bool] = (
        False  # torch's RNN/LSTM/GRU: its final state can start a decoder
    )
    attends_memory: ClassVar[bool] = False  # attention: from: [query, memory(, lengths)]
    cached_attention: ClassVar[bool] = False  # self-attention with a key/value cache (a decoder's)
    positional: ClassVar[bool] = False  # adds positions: a step continues at the cache's length
    takes_targets: ClassVar[bool] = False  # reads the targets in training (teacher forcing)
    is_latent: ClassVar[bool] = False  # the VAE latent: forward() keeps its mean and log-variance

    # ---- the four answers; defaults describe a shape-preserving, parameter-free layer
    def infer(self, shapes: list[Shape]) -> Shape:
        return shapes[0]

    def param_count(self, shapes: list[Shape]) -> int:
        return 0

    def module(self, shapes: list[Shape]) -> str | None:
        return None

    # Operations per output element, for the default `flops` (elementwise layers: 1).
    cost_per_element: ClassVar[float] = 1

    def flops(self, shapes: list[tuple[int, ...]], out: tuple[int, ...]) -> int:
        """Floating-point operations of one example's forward pass (a multiply-add counts 2),
        from concrete shapes (dynamic dims given sizes). The default: cost_per_element per
        output element, which fits elementwise layers."""
        return round(self.cost_per_element * math.prod(out))

    def call(self, module: str | None, args: list[str], shapes: list[Shape]) -> str:
        return f"{module}({', '.join(args)})"

    def helpers(self) -> tuple[str, ...]:
        """Helper code model.py must define for this layer: names from layers/_helpers/, or the
        source itself (a custom cell's generated class)."""
        return ()

    def side_inputs(self) -> tuple[str, ...]:
        """Inputs read after those of `from:` (a `lengths:` input, a state source); the expander
        appends them to `from:` in this order."""
        return ()

    @property
    def state_from(self) -> str | None:
        """The layer whose state this one starts from (`initial_state: {from: ...}`), if any."""
        return None

    @property
    def carries_state(self) -> bool:
        """step() carries this layer's state (a recurrent state, or an attention cache)."""
        return self.recurrent or self.cached_attention

    # ---- stateful answers (carries_state): how step() and encode() carry the layer's state
    def state_dims(self, shapes: list[Shape]) -> list[tuple[str, tuple]]:
        """The state a step carries: (name, dims) per tensor."""
        raise NotImplementedError(f"{self.type} carries no state")

    def step_line(self, module: str, args: list[str], out: str, states: list[str]) -> str:
        """One line of step(): `out, *states = ...`, continuing from `states`."""
        raise NotImplementedError(f"{self.type} carries no state")

    def start_line(self, module: str, states: list[str], source: str | None) -> str:
        """A decoder's first state, in encode(): from `source` (an encoder's), or the usual one."""
        raise NotImplementedError(f"{self.type} carries no state")

    def initial_state_source(self, module: str) -> str:
        """The expression initial_state() returns for this layer (a language model's)."""
        raise NotImplementedError(f"{self.type} carries no state")


class ReadsLengths(Layer):
    """A layer that may read a `lengths:` input: each sequence's length, later positions being
    padding. The expander appends it to `from:`, after the layer's own inputs."""

    lengths: str | None = Field(
        None,
        description="An int64 input of shape [] holding each sequence's length; later positions "
        "are padding.",
    )

    def side_inputs(self) -> tuple[str, ...]:
        return (self.lengths,) if self.lengths else ()


def kwargs(**kw: Any) -> str:
    """Render keyword arguments, leaving out those equal to PyTorch's defaults (marked by a tuple)."""
    out = []
    for key, value in kw.items():
        if isinstance(value, _Default):
            if value.value == value.default:
                continue
            value = value.value
        out.append(f"{key}={lit(value)}")
    return ", ".join(out)


class _Default:
    def __init__(self, value: Any, default: Any):
        self.value, self.default = value, default


def opt(value: Any, default: Any) -> _Default:
    """A keyword argument that is omitted from generated code when it equals the default."""
    return _Default(value, default)


def args(*positional: Any, **kw: Any) -> str:
    parts = [lit(p) for p in positional]
    rendered = kwargs(**kw)
    return ", ".join(parts + ([rendered] if rendered else []))


def unpair(p: tuple) -> Any:
    """(3, 3) -> 3 so generated code reads like hand-written code."""
    return p[0] if isinstance(p, tuple) and len(p) == 2 and p[0] == p[1] else p


def need_int(dim: Dim, what: str) -> int:
    if not isinstance(dim, int):
        raise ShapeError(f"{what} must be a fixed size, but it is the dynamic dimension '{dim}'")
    return dim


def without_lengths(layer: Layer, shapes: list[Shape]) -> list[Shape]:
    """The inputs before a `lengths:` input (read last, after `from:`), which must be (batch,)."""
    if not isinstance(layer, ReadsLengths) or not layer.lengths:
        return list(shapes)
    if tuple(shapes[-1]) != ():
        raise ShapeError(
            f"lengths '{layer.lengths}' must have shape (batch,), got {fmt_shape(shapes[-1])}",
            hint="declare it as {shape: [], dtype: int64}",
            field="lengths",
        )
    return list(shapes[:-1])


def need_rank(
    shapes: list[Shape], ranks: tuple[int, ...], layer: str, expected: str, hint: str | None = None
) -> Shape:
    shape = shapes[0]
    if len(shape) not in ranks:
        raise ShapeError(f"{layer} expects input {expected}, got {fmt_shape(shape)}", hint)
    return shape


def check_window(kernel: int, stride: int, dilation: int = 1) -> None:
    """A window of 0 or a step of 0 would divide by zero here and fail in torch later."""
    for name, value in (("kernel_size", kernel), ("stride", stride), ("dilation", dilation)):
        if value < 1:
            raise ShapeError(f"{name} must be at least 1, got {value}", field=name)


def window_out(
    size: Dim, kernel: int, stride: int, pad: int, dilation: int = 1, what: str = "input"
) -> Dim:
    """Output length of a convolution/pooling window along one axis."""
    check_window(kernel, stride, dilation)
    if isinstance(size, str):
        if kernel == 1 and stride == 1 and pad == 0:
            return size
        shift = 2 * pad - dilation * (kernel - 1) - 1
        inner = f"{size} + {shift}" if shift > 0 else (f"{size} - {-shift}" if shift < 0 else size)
        return f"({inner}) // {stride} + 1"
    out = math.floor((size + 2 * pad - dilation * (kernel - 1) - 1) / stride) + 1
    if out < 1:
        raise ShapeError(
            f"{what} of size {size} is too small for a window of {kernel}"
            + (f" (dilation {dilation})" if dilation > 1 else "")
            + (f" with padding {pad}" if pad else ""),
            hint=f"the output size would be {out}",
        )
    return out


def same_pad(kernel: int, dilation: int) -> int:
    return dilation * (kernel - 1) // 2


def product(dims) -> Dim:
    ints = [d for d in dims if isinstance(d, int)]
    syms = [d if d.isidentifier() else f"({d})" for d in dims if isinstance(d, str)]
    n = math.prod(ints)
    if not syms:
        return n
    return "*".join(([str(n)] if n != 1 else []) + syms)
