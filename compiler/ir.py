"""The intermediate representation: exactly what the templates need, as frozen plain data.

Built once from the resolved layers and the inferred shapes; templates never see pydantic
objects and never compute anything. All names here are already sanitized identifiers and
all values already rendered literals.

`build_ir` makes what every model has (inputs, one node per layer, the training settings);
the task adds its own pieces (`Task.build`: the states a step carries, extra model methods).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import __version__
from .layers._helpers import HELPERS, helper
from .layers.base import fmt_shape
from .layers.embedding import Embedding
from .sanitize import RESERVED, Identifiers, class_name, comment_text, lit, slug

if TYPE_CHECKING:  # the tasks build IR pieces, so they import this module; not the other way
    from .plan import TrainPlan
    from .shapes import Inferred
    from .spec import Parsed


@dataclass(frozen=True)
class InputIR:
    name: str  # as in the spec and the ONNX graph
    var: str  # Python identifier in forward()
    dims: tuple  # ("batch", 1, 28, 28): named dims stay strings
    dtype: str
    shape_comment: str
    ids: int | None = None  # token ids: how many the embeddings that read them have


@dataclass(frozen=True)
class NodeIR:
    name: str  # the layer's name in the spec (comment only)
    kind: str
    attr: str | None  # self.<attr> when the layer owns a module
    module: str | None  # constructor source
    var: str  # variable the forward line assigns
    call: str  # forward expression
    shape_comment: str
    params: int
    step_line: str | None = None  # step(): the line that carries state
    forward_line: str | None = None  # replaces `var = call` in forward() (the VAE latent)


@dataclass(frozen=True)
class StateIR:
    """One state tensor a step graph takes and returns (or a memory an encoder gives)."""

    name: str  # ONNX input name; the output is `next.` + the rest
    var: str  # Python identifier in step()
    dims: tuple  # e.g. (2, "batch", 128): layers, batch, hidden


# The train: settings the machinery reads at run time (compiler/train/_spec.py: CONFIG). The
# rest of train: is fixed when train.py is generated and written there as code.
RUN_TIME_SETTINGS = (
    "epochs",
    "batch_size",
    "seed",
    "deterministic",
    "device",
    "precision",
    "accumulate_steps",
    "workers",
    "clip_grad_norm",
    "clip_grad_value",
    "early_stopping",
    "checkpoint",
    "log_every_steps",
    "on_nan",
    "tensorboard",
)


@dataclass(frozen=True)
class TrainIR:
    """The resolved `train:` and split settings."""

    config_literal: str  # CONFIG for train.py, rendered: RUN_TIME_SETTINGS only
    loss: str  # cross_entropy | binary_cross_entropy | mse | l1 | huber | adversarial
    label_smoothing: float
    huber_delta: float
    metrics: tuple[str, ...]
    monitor: str
    monitor_mode: str  # min | max
    val_split: float
    test_split: float
    lr: float
    optimizer_type: str  # what the optimizer is, in words, for a comment
    optimizer_call: str  # `torch.optim.X(params, lr=lr, ...)`
    schedule_lines: tuple[str, ...]  # make_schedule's body
    init_literal: str = "None"  # INIT: train.init's settings (compiler/train/init.py)
    freeze_literal: str = "()"  # FREEZE: the frozen modules
    groups_literal: str = "()"  # GROUPS: the parameter groups, by module
    tbptt: int | None = None
    per_position: bool = False  # targets per time step (a language model, a sequence tagger)


@dataclass(frozen=True)
class ModelIR:
    spec_name: str  # for comments (escaped)
    slug: str
    class_name: str
    description: str
    source_file: str
    sha256: str  # of the spec's text and its --set overrides
    identity: str  # of the spec without what a resume may change: checkpoints carry it
    version: str
    task: str
    inputs: tuple[InputIR, ...]
    dynamic_dims: tuple[str, ...]  # "batch" and the named dims of the inputs
    nodes: tuple[NodeIR, ...]
    helpers: tuple[str, ...]  # source of helper classes/functions some layers need, in order
    helper_imports: tuple[str, ...]  # the import statements those need
    output_name: str
    output_var: str
    output_kind: str  # logits | probabilities | log_probabilities | binary_logit | binary_probability | values
    output_dims: tuple
    num_classes: int | None
    total_params: int
    labels: tuple[str, ...] | None
    standardize: bool
    target_dtype: (
        str | None
    )  # what train.py makes the targets (None: int64 if integer, else float32)
    train: TrainIR
    example_batch: int
    teacher: bool = False  # forward() takes the targets (a decoder's teacher forcing)
    augment: dict | None = None  # data.augment (images), for train.py's training batches
    autoencoder: object = None  # tasks/autoencoder.py: AutoencoderIR
    gan: object = None  # tasks/gan.py: GanIR
    seq2seq: object = None  # tasks/seq2seq.py: Seq2seqIR
    states: tuple[StateIR, ...] = ()  # language models and seq2seq decoders: what step() carries
    initial_states: tuple[str, ...] = ()  # initial_state()'s items, one per recurrent layer


@dataclass
class Built:
    """One layer's node while the IR is built: what a task needs to add lines that carry state."""

    layer: object  # the resolved Layer
    index: int  # in Parsed.layers
    pos: int  # in ModelIR.nodes (forward order)
    ident: str  # the identifier of its module attribute
    args: list[str]  # the variables it reads, in `from:` order
    shapes: list  # its input shapes
    node: NodeIR


@dataclass
class Builder:
    """The IR under construction, handed to the task (`Task.build`) to add its pieces."""

    parsed: Parsed
    inferred: Inferred
    plan: TrainPlan
    ids: Identifiers
    inputs: tuple[InputIR, ...]
    var_of: dict[str, str]  # layer or input name -> its variable
    built: list[Built] = field(default_factory=list)
    final_of: dict[str, str] = field(default_factory=dict)  # state source -> its final state

    @property
    def nodes(self) -> list[NodeIR]:
        return [b.node for b in self.built]


@dataclass(frozen=True)
class TaskIR:
    """What a task adds to the IR (`Task.build`); empty for a plain model."""

    states: tuple[StateIR, ...] = ()
    initial_states: tuple[str, ...] = ()
    autoencoder: object = None
    gan: object = None
    seq2seq: object = None
    inputs: tuple[InputIR, ...] | None = None  # what forward() reads, when not every input
    output_layer: int | None = None  # index of the layer forward() returns, when not the last


def build_ir(
    parsed: Parsed,
    inferred: Inferred,
    plan: TrainPlan,
    sha256: str,
    source_file: str,
    identity: str = "",
) -> ModelIR:
    spec, task = parsed.spec, parsed.task
    b = _nodes(parsed, inferred, plan)
    pieces = task.build(b)
    inputs = pieces.inputs if pieces.inputs is not None else b.inputs
    order = list(inferred.order)
    last = parsed.layers[pieces.output_layer if pieces.output_layer is not None else order[-1]]
    out_shape = inferred.out_shapes[last.name]
    helpers = list(dict.fromkeys(h for i in order for h in parsed.layers[i].helpers()))
    return ModelIR(
        spec_name=comment_text(spec.name, 80),
        slug=slug(spec.name),
        class_name=class_name(spec.name),
        description=comment_text(spec.description or "", 300),
        source_file=comment_text(source_file, 120),
        sha256=sha256,
        identity=identity,
        version=__version__,
        task=task.name,
        inputs=inputs,
        dynamic_dims=tuple(dict.fromkeys(d for i in inputs for d in i.dims if isinstance(d, str))),
        nodes=tuple(b.nodes),
        helpers=tuple(helper(h).body if h in HELPERS else h for h in helpers),
        helper_imports=tuple(line for h in helpers if h in HELPERS for line in helper(h).imports),
        output_name=spec.output or task.output_name(_output(plan)),
        output_var=b.var_of[last.name],
        output_kind=plan.output_kind,
        output_dims=("batch", *out_shape),
        num_classes=plan.num_classes,
        total_params=inferred.total_params,
        labels=tuple(spec.labels) if spec.labels else None,
        standardize=bool(spec.data and spec.data.standardize),
        target_dtype=task.target_dtype,
        train=_train_ir(parsed, plan, out_shape, {bt.layer.name: bt.ident for bt in b.built}),
        example_batch=2,
        teacher=any(parsed.layers[i].takes_targets for i in order),
        augment=spec.data.augment.model_dump() if spec.data and spec.data.augment else None,
        autoencoder=pieces.autoencoder,
        gan=pieces.gan,
        seq2seq=pieces.seq2seq,
        states=pieces.states,
        initial_states=pieces.initial_states,
    )


def _output(plan: TrainPlan):
    from .tasks import Output

    return Output(plan.output_kind, plan.num_classes, plan.output_shape)


def _nodes(parsed: Parsed, inferred: Inferred, plan: TrainPlan) -> Builder:
    """One node per layer in forward order. A layer's output flows through the chain variable
    (`x`) when only the next layer reads it; otherwise it keeps a variable of its own."""
    chain = "h" if "x" in parsed.inputs else "x"
    ids = Identifiers(RESERVED - {"x", "h"})
    ids.taken.add(chain)
    vocab: dict[str, int] = {}  # a token input -> the rows of the embeddings that read it
    for layer in parsed.layers:
        if isinstance(layer, Embedding) and layer.from_:
            name = layer.from_[0]
            vocab[name] = min(vocab.get(name, layer.num_embeddings), layer.num_embeddings)
    inputs = tuple(
        InputIR(
            name,
            ids.make(name),
            ("batch", *inp.shape),
            inp.dtype,
            fmt_shape(tuple(inp.shape)),
            vocab.get(name) if inp.dtype == "int64" else None,
        )
        for name, inp in parsed.inputs.items()
    )
    b = Builder(parsed, inferred, plan, ids, inputs, {i.name: i.var for i in inputs})
    order = list(inferred.order)
    consumers: dict[str, list[int]] = {}
    for pos, i in enumerate(order):
        for ref in parsed.layers[i].from_ or []:
            consumers.setdefault(ref, []).append(pos)
    sources = {layer.state_from for layer in parsed.layers} - {None}
    named = parsed.task.named_outputs(parsed) | sources  # read by name elsewhere
    for pos, i in enumerate(order):
        layer = parsed.layers[i]
        shapes = list(inferred.in_shapes[i])
        module = layer.module(shapes)
        ident = ids.make(layer.name)
        used = consumers.get(layer.name, [])
        is_output = pos == len(order) - 1
        chained = (used == [pos + 1] and not is_output) or (not used and is_output)
        var = chain if chained and layer.name not in named else ident
        args = [b.var_of[r] for r in layer.from_ or []]
        if layer.state_from:  # it starts from the final state its source left
            args[-1] = b.final_of[layer.state_from]
        call = layer.call(f"self.{ident}" if module else None, args, shapes)
        forward_line = None
        if layer.name in sources:
            b.final_of[layer.name] = var
            if layer.torch_recurrent:
                b.final_of[layer.name] = ids.make(f"{layer.name}_final")
                forward_line = layer.final_line(f"self.{ident}", args, var, b.final_of[layer.name])
        node = NodeIR(
            comment_text(layer.name, 60),
            layer.type,
            ident if module else None,
            module,
            var,
            call,
            fmt_shape(inferred.out_shapes[layer.name]),
            inferred.params[i],
            forward_line=forward_line,
        )
        b.built.append(Built(layer, i, pos, ident, args, shapes, node))
        b.var_of[layer.name] = var
    return b


def _train_ir(parsed: Parsed, plan: TrainPlan, out_shape: tuple, idents: dict) -> TrainIR:
    from .optim import OPTIMIZERS, optimizer_call, schedule_lines
    from .weights import init_settings, modules

    spec = parsed.spec
    train, opt = spec.train, spec.train.optimizer
    settings = train.model_dump(mode="json", include=set(RUN_TIME_SETTINGS))
    described = ", ".join(
        f"{k} {getattr(opt, k)}" for k in ("lr", *OPTIMIZERS[opt.type][1]) if getattr(opt, k)
    )
    return TrainIR(
        config_literal=lit({k: settings[k] for k in RUN_TIME_SETTINGS}),
        loss=plan.loss,
        label_smoothing=train.loss.label_smoothing,
        huber_delta=train.loss.delta,
        metrics=plan.metrics,
        monitor=plan.monitor,
        monitor_mode=plan.monitor_mode,
        val_split=spec.data.val_split if spec.data else 0.2,
        test_split=spec.data.test_split if spec.data else 0.0,
        lr=opt.lr,
        optimizer_type=f"{opt.type} ({described})",
        optimizer_call=optimizer_call(opt),
        schedule_lines=tuple(schedule_lines(train.schedule, plan.monitor_mode, opt.lr)),
        init_literal=lit(init_settings(parsed)),
        freeze_literal=lit(modules(parsed, idents, train.freeze)),
        groups_literal=lit(
            tuple(
                {
                    "layers": modules(parsed, idents, g.layers),
                    "lr": g.lr,
                    "weight_decay": g.weight_decay,
                }
                for g in opt.groups
            )
        ),
        tbptt=train.tbptt,
        per_position=plan.output_kind != "values" and len(out_shape) > 1,
    )


def state_irs(b: Builder, built: Built) -> list[StateIR]:
    """The state tensors a stateful layer carries, each with its step() variable."""
    return [
        StateIR(
            f"state.{built.layer.name}.{state}", b.ids.make(f"{built.layer.name}_{state}"), dims
        )
        for state, dims in built.layer.state_dims(built.shapes)
    ]
