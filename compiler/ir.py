"""The intermediate representation: exactly what the templates need, as frozen plain data.

Built once from the validated spec and the inferred shapes; templates never see pydantic
objects and never compute anything. All names here are already sanitized identifiers and
all values already rendered literals.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from . import __version__
from .layers._helpers import HELPERS
from .layers.base import fmt_shape
from .plan import TrainPlan
from .sanitize import RESERVED, Identifiers, class_name, comment_text, lit, slug
from .shapes import Inferred
from .spec import TARGET_IN, Parsed


@dataclass(frozen=True)
class InputIR:
    name: str  # as in the spec and the ONNX graph
    var: str  # Python identifier in forward()
    dims: tuple  # ("batch", 1, 28, 28): named dims stay strings
    dtype: str
    shape_comment: str


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
    step_line: str | None = None  # language models: the line of step() that carries state
    forward_line: str | None = None  # replaces `var = call` in forward() (the VAE latent)


@dataclass(frozen=True)
class AutoencoderIR:
    """Where the encoder ends and the decoder starts, for encode() and decode()."""

    encoder: tuple[int, ...]  # positions in ModelIR.nodes
    decoder: tuple[int, ...]
    code_var: str  # the variable decode() starts from (set to z)
    encoder_out: str  # the variable holding the encoder's features (or the code, without a latent)
    latent_attr: str | None  # self.<attr> of the VAE latent
    code_dims: tuple  # ("batch", D)
    beta: float
    warmup_epochs: float
    noise: dict | None  # {type, std, p}


@dataclass(frozen=True)
class GanIR:
    """The two chains of a GAN: forward() is the generator, discriminate() the discriminator."""

    generator: tuple[int, ...]  # positions in ModelIR.nodes
    discriminator: tuple[int, ...]
    data: InputIR  # the data input the discriminator reads
    logit_var: str
    generator_attrs: tuple[str, ...]  # modules whose parameters the generator's optimizer owns
    discriminator_attrs: tuple[str, ...]
    dim: int


@dataclass(frozen=True)
class StateIR:
    """One state tensor a language model's step graph takes and returns."""

    name: str  # ONNX input name; the output is `next.` + the rest
    var: str  # Python identifier in step()
    dims: tuple  # e.g. (2, "batch", 128): layers, batch, hidden


@dataclass(frozen=True)
class Seq2seqIR:
    """encode() runs the encoder and starts the decoder's state; step() runs the decoder."""

    encoder: tuple[int, ...]  # positions in ModelIR.nodes
    decoder: tuple[int, ...]
    source: tuple[InputIR, ...]  # what encode() reads: the source (and its lengths)
    target: InputIR  # target_in: <bos> and the target shifted right
    memories: tuple[StateIR, ...]  # encoder outputs the decoder step reads, batch first
    step_inputs: tuple[InputIR, ...]  # model inputs the step reads besides target_in (lengths)
    start_lines: tuple[str, ...]  # encode(): the decoder's first state
    teacher_forcing: float


@dataclass(frozen=True)
class ModelIR:
    spec_name: str  # for comments (escaped)
    slug: str
    class_name: str
    description: str
    source_file: str
    sha256: str
    version: str
    task: str
    inputs: tuple[InputIR, ...]
    dynamic_dims: tuple[str, ...]  # "batch" and the named dims of the inputs
    nodes: tuple[NodeIR, ...]
    helpers: tuple[str, ...]  # source of helper classes/functions some layers need, in order
    output_name: str
    output_var: str
    output_kind: str  # logits | probabilities | log_probabilities | binary_logit | binary_probability | values
    output_dims: tuple
    num_classes: int | None
    total_params: int
    labels: tuple[str, ...] | None
    standardize: bool
    train: TrainIR
    example_batch: int
    teacher: bool = False  # forward() takes the targets (a decoder's teacher forcing)
    autoencoder: AutoencoderIR | None = None
    gan: GanIR | None = None
    seq2seq: Seq2seqIR | None = None
    states: tuple[StateIR, ...] = ()  # language models and seq2seq decoders: what step() carries
    initial_states: tuple[str, ...] = ()  # initial_state()'s items, one per recurrent layer


@dataclass(frozen=True)
class TrainIR:
    """The resolved `train:` and split settings; `settings` is plain JSON data for branching."""

    config_literal: str  # CONFIG dict for train.py, rendered
    settings: dict
    loss: str  # cross_entropy | binary_cross_entropy | mse | l1 | huber
    metrics: tuple[str, ...]
    monitor: str
    monitor_mode: str  # min | max
    val_split: float
    test_split: float
    per_position: bool = False  # targets per time step (a language model, a sequence tagger)


DEFAULT_OUTPUT = {
    "values": "prediction",
    "logits": "logits",
    "probabilities": "probabilities",
    "log_probabilities": "log_probabilities",
    "binary_logit": "logit",
    "binary_probability": "probability",
}


def build_ir(
    parsed: Parsed, inferred: Inferred, plan: TrainPlan, sha256: str, source_file: str
) -> ModelIR:
    spec = parsed.spec
    chain = "h" if "x" in spec.inputs else "x"
    ids = Identifiers(RESERVED - {"x", "h"})
    ids.taken.add(chain)
    inputs = tuple(
        InputIR(name, ids.make(name), ("batch", *inp.shape), inp.dtype, fmt_shape(tuple(inp.shape)))
        for name, inp in spec.inputs.items()
    )
    var_of = {i.name: i.var for i in inputs}
    order = list(inferred.order)
    consumers: dict[str, list[int]] = {}
    for pos, i in enumerate(order):
        for ref in spec.model[i].from_ or []:
            consumers.setdefault(ref, []).append(pos)
    last = spec.model[order[-1]]
    nodes, states, initial = [], [], []
    section = [parsed.origins[i].path[0] for i in range(len(spec.model))]
    seq2seq = spec.task == "seq2seq"
    sources = {getattr(layer, "state_from", None) for layer in spec.model} - {None}
    memories = _memories(spec, section) if seq2seq else []
    final_of: dict[str, str] = {}  # a state source -> the variable holding its final state
    starts: list[str] = []
    cross: list[StateIR] = []  # transformer decoder layers: the memory's keys and values
    cross_lines: list[str] = []
    for pos, i in enumerate(order):
        layer = spec.model[i]
        shapes = list(inferred.in_shapes[i])
        module = layer.module(shapes)
        ident = ids.make(layer.name)
        used = consumers.get(layer.name, [])
        is_output = layer is last
        chained = (used == [pos + 1] and not is_output) or (not used and is_output)
        if layer.name in memories or layer.name in sources:
            chained = False  # encode() returns it; step() takes it by name
        var = chain if chained else ident
        args = [var_of[r] for r in layer.from_ or []]
        if getattr(layer, "state_from", None):
            args[-1] = final_of[layer.state_from]
        call = layer.call(f"self.{ident}" if module else None, args, shapes)
        step_line = forward_line = None
        if layer.name in sources:
            final_of[layer.name] = var
            if layer.type in ("rnn", "lstm", "gru"):
                final_of[layer.name] = ids.make(f"{layer.name}_final")
                forward_line = layer.final_line(f"self.{ident}", args, var, final_of[layer.name])
        if seq2seq and section[i] == "decoder" and hasattr(layer, "state_dims"):
            names = []
            for state, dims in layer.state_dims(shapes):
                state_var = ids.make(f"{layer.name}_{state}")
                names.append(state_var)
                states.append(StateIR(f"state.{layer.name}.{state}", state_var, dims))
            source = final_of.get(getattr(layer, "state_from", None) or "")
            starts.append(layer.start_line(f"self.{ident}", names, source))
            if hasattr(layer, "memory_dims"):  # attention over a memory: its keys and values once
                projected = [ids.make(f"{layer.name}_memory_{kv}") for kv in ("keys", "values")]
                cross += [
                    StateIR(f"memory.{layer.name}.{kv}", v, layer.memory_dims(shapes))
                    for kv, v in zip(("keys", "values"), projected, strict=True)
                ]
                cross_lines.append(f"{', '.join(projected)} = self.{ident}.memory_kv({args[1]})")
                names = names + projected
            step_line = layer.step_line(f"self.{ident}", args, var, names)
        if seq2seq and section[i] == "decoder" and layer.type == "positional_encoding":
            step_line = f"{var} = self.{ident}({args[0]}, offset=OFFSET.shape[2])"
        if layer.type == "gaussian_latent" and spec.task == "autoencoder":
            # forward() keeps the mean and log-variance for the KL term
            forward_line = f"{var}, latent_mean, latent_log_var = self.{ident}({args[0]})"
        if spec.task == "language_model" and hasattr(layer, "state_dims"):
            names = []
            for state, dims in layer.state_dims(shapes):
                state_var = ids.make(f"{layer.name}_{state}")
                names.append(state_var)
                states.append(StateIR(f"state.{layer.name}.{state}", state_var, dims))
            step_line = layer.step_line(f"self.{ident}", args, var, names)
            initial.append(layer.initial_state_source(f"self.{ident}"))
        out_shape = inferred.out_shapes[layer.name]
        nodes.append(
            NodeIR(
                comment_text(layer.name, 60),
                layer.type,
                ident if module else None,
                module,
                var,
                call,
                fmt_shape(out_shape),
                inferred.params[i],
                step_line,
                forward_line,
            )
        )
        var_of[layer.name] = var
    if seq2seq:  # a decoder's positional encoding continues from the cache's length
        keys = next((st.var for st in states if st.name.endswith(".keys")), None)
        nodes = [
            replace(n, step_line=n.step_line.replace("OFFSET", keys))
            if n.step_line and "OFFSET" in n.step_line
            else n
            for n in nodes
        ]
    out_shape = inferred.out_shapes[last.name]
    gan = None
    if spec.task == "gan":
        gan = _gan_ir(parsed, nodes, order, inputs)
        last = spec.model[order[gan.generator[-1]]]
        out_shape = inferred.out_shapes[last.name]
        inputs = tuple(i for i in inputs if i.name == "z")
    kind = plan.output_kind
    standardize = bool(spec.data and spec.data.standardize)
    settings = spec.train.model_dump(mode="json")
    settings["loss"]["type"] = plan.loss  # resolved: what `auto` became for this model
    settings["metrics"] = list(plan.metrics)
    if spec.task != "gan":
        settings.pop("gan")  # only a GAN's train.py reads it
    if spec.task != "seq2seq":
        settings.pop("teacher_forcing")  # only a seq2seq model's forward() takes it
    train = TrainIR(
        config_literal=lit(settings),
        settings=settings,
        loss=plan.loss,
        metrics=plan.metrics,
        monitor=plan.monitor,
        monitor_mode=plan.monitor_mode,
        val_split=spec.data.val_split if spec.data else 0.2,
        test_split=spec.data.test_split if spec.data else 0.0,
        per_position=spec.task in ("classification", "language_model", "seq2seq")
        and len(out_shape) > 1,
    )
    return ModelIR(
        spec_name=comment_text(spec.name, 80),
        slug=slug(spec.name),
        class_name=class_name(spec.name),
        description=comment_text(spec.description or "", 300),
        source_file=comment_text(source_file, 120),
        sha256=sha256,
        version=__version__,
        task=spec.task,
        inputs=inputs,
        dynamic_dims=tuple(dict.fromkeys(d for i in inputs for d in i.dims if isinstance(d, str))),
        nodes=tuple(nodes),
        helpers=tuple(  # a name from layers/_helpers.py, or the source itself
            dict.fromkeys(HELPERS.get(h, h) for i in order for h in spec.model[i].helpers())
        ),
        output_name=spec.output or ("sample" if gan else DEFAULT_OUTPUT[kind]),
        output_var=var_of[last.name],
        output_kind=kind,
        output_dims=("batch", *out_shape),
        num_classes=plan.num_classes,
        total_params=inferred.total_params,
        labels=tuple(spec.labels) if spec.labels else None,
        standardize=standardize,
        train=train,
        example_batch=2,
        teacher=any(getattr(spec.model[i], "takes_targets", False) for i in order),
        autoencoder=_autoencoder_ir(parsed, inferred, nodes, order)
        if spec.task == "autoencoder"
        else None,
        gan=gan,
        seq2seq=_seq2seq_ir(
            parsed, nodes, order, inputs, memories, var_of, cross_lines + starts, inferred, cross
        )
        if seq2seq
        else None,
        states=tuple(states),
        initial_states=tuple(initial),
    )


def _autoencoder_ir(parsed: Parsed, inferred: Inferred, nodes: list, order: list) -> AutoencoderIR:
    spec = parsed.spec
    section = [parsed.origins[i].path[0] for i in order]
    encoder = tuple(p for p, sec in enumerate(section) if sec == "encoder")
    decoder = tuple(p for p, sec in enumerate(section) if sec == "decoder")
    latent = next((p for p, sec in enumerate(section) if sec == "latent"), None)
    last_code = latent if latent is not None else encoder[-1]
    code_layer = spec.model[order[last_code]]
    noise = spec.noise.model_dump() if spec.noise else None
    return AutoencoderIR(
        encoder=encoder,
        decoder=decoder,
        code_var=nodes[last_code].var,
        encoder_out=nodes[encoder[-1]].var,
        latent_attr=nodes[latent].attr if latent is not None else None,
        code_dims=("batch", *inferred.out_shapes[code_layer.name]),
        beta=spec.latent.beta if spec.latent else 0.0,
        warmup_epochs=spec.latent.warmup_epochs if spec.latent else 0.0,
        noise=noise,
    )


def _gan_ir(parsed: Parsed, nodes: list, order: list, inputs: tuple) -> GanIR:
    section = [parsed.origins[i].path[0] for i in order]
    generator = tuple(p for p, sec in enumerate(section) if sec == "generator")
    discriminator = tuple(p for p, sec in enumerate(section) if sec == "discriminator")
    return GanIR(
        generator=generator,
        discriminator=discriminator,
        data=next(i for i in inputs if i.name != "z"),
        logit_var=nodes[discriminator[-1]].var,
        generator_attrs=tuple(nodes[p].attr for p in generator if nodes[p].attr),
        discriminator_attrs=tuple(nodes[p].attr for p in discriminator if nodes[p].attr),
        dim=parsed.spec.latent.dim,
    )


def _memories(spec, section: list) -> list[str]:
    """Encoder layers the decoder reads as data (attention memory), in first-use order. Not
    memories: a recurrent layer's state source (read last; encode() turns it into a state) and
    a transformer decoder layer's memory (encode() projects it to keys and values)."""
    names = {layer.name: k for k, layer in enumerate(spec.model)}
    found = []
    for i, layer in enumerate(spec.model):
        if section[i] != "decoder":
            continue
        refs = list(layer.from_ or [])
        if getattr(layer, "state_from", None):
            refs = refs[:-1]
        if layer.type == "transformer_decoder_layer":
            refs = refs[:1] + refs[2:]
        for ref in refs:
            if ref in names and section[names[ref]] == "encoder" and ref not in found:
                found.append(ref)
    return found


def _seq2seq_ir(
    parsed, nodes, order, inputs, memories, var_of, starts, inferred, cross
) -> Seq2seqIR:
    spec = parsed.spec
    section = [parsed.origins[i].path[0] for i in order]
    encoder = tuple(p for p, sec in enumerate(section) if sec == "encoder")
    decoder = tuple(p for p, sec in enumerate(section) if sec == "decoder")
    by_name = {i.name: i for i in inputs}
    read = {r for p in decoder for r in spec.model[order[p]].from_ or []}
    return Seq2seqIR(
        encoder=encoder,
        decoder=decoder,
        source=tuple(i for i in inputs if i.name != TARGET_IN),
        target=by_name[TARGET_IN],
        memories=tuple(
            StateIR(f"memory.{m}", var_of[m], ("batch", *inferred.out_shapes[m])) for m in memories
        )
        + tuple(cross),
        step_inputs=tuple(i for i in inputs if i.name in read and i.name != TARGET_IN),
        start_lines=tuple(starts),
        teacher_forcing=spec.train.teacher_forcing,
    )
