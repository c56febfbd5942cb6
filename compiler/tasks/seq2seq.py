"""task: seq2seq: an encoder reads a source, a decoder writes a target sequence token by token.

The encoder reads the source (token ids, or an image); the decoder reads the previous target
tokens (`target_in`, an input specc adds: <bos> and the target shifted right) and encoder
layers through `from:` (attention memories) or `initial_state: {from: ...}` (a start state).
Every decoder layer must work one step at a time. Besides model.onnx (teacher-forced, for
scoring) it exports encoder.onnx and step.onnx; served by `specc.runtime.Seq2Seq`
(`specc translate`: greedy, beam search, sampling).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from specc.runtime.contracts import BOS, EOS, PAD, SOURCE_LENGTHS, TARGET_IN

from ..diagnostics import did_you_mean
from ..expand import Section
from ..ir import InputIR, StateIR, TaskIR, state_irs
from .base import Layout, Task, sequence_output, step_by_step, token_scores


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
    special: tuple[int, int, int] = (PAD, BOS, EOS)  # the ids greedy() needs


class Seq2seq(Task):
    name = "seq2seq"
    summary = (
        "an encoder and a decoder that writes a target sequence token by token, run with "
        "`specc translate`"
    )
    reads = ("encoder", "decoder")
    sections = ("encoder", "decoder")
    takes_state_sources = True
    data_types = ("pairs",)
    losses = ("cross_entropy",)
    train_keys = {"teacher_forcing": "applies to a seq2seq decoder"}
    runtime_class = "specc.runtime.Seq2Seq"

    def web_examples(self, x, data, rows, vocab) -> dict:
        v = vocab("source")
        if v is None:  # a captioning model's sources are images
            return {"rows": x.reshape(len(x), -1).tolist()}
        lengths = data["x1"][rows]
        return {"sources": [v.decode(r[:n]) for r, n in zip(x, lengths, strict=True)]}

    # -- parse

    def layout(self, raw, src, errors):
        """The source is the one declared input; specc adds its lengths (a token source's
        padding) and target_in, so a spec declares only its source."""
        missing = [k for k in self.sections if not isinstance(raw.get(k), list)]
        for key in missing:
            errors.append(src.error((), f"task: seq2seq needs a '{key}:' list of layers"))
        inputs = raw.get("inputs")
        if not isinstance(inputs, dict) or len(inputs) != 1:
            errors.append(
                src.error(
                    ("inputs",) if "inputs" in raw else (),
                    "a seq2seq model declares one input, its source (token ids [time] or an image)",
                    f"'{SOURCE_LENGTHS}' and '{TARGET_IN}' are added for you",
                )
            )
            return None
        if missing:
            return None
        ((source, declared),) = inputs.items()
        added = {TARGET_IN: {"shape": ["steps"], "dtype": "int64"}}
        if (
            isinstance(declared, dict)
            and declared.get("dtype") == "int64"
            and isinstance(declared.get("shape"), list)
            and len(declared["shape"]) == 1
        ):  # token ids: padded, so their lengths come too
            added = {SOURCE_LENGTHS: {"shape": [], "dtype": "int64"}, **added}
        if source in added:
            errors.append(
                src.error(
                    ("inputs", source),
                    f"'{source}' is added by specc; rename the source",
                    at_key=True,
                )
            )
            return None
        chain = (Section("encoder", start=source), Section("decoder", start=TARGET_IN))
        return Layout(chain, added)

    # -- evaluate

    def read_examples(self, run, data, spec, model):
        """A split, or `source<TAB>target` lines (a text source)."""
        from ..evaluate import read_pairs

        return read_pairs(run, data, spec, model, super().read_examples)

    def evaluate(self, job):
        """Teacher-forced through model.onnx as train.py scores it (loss, token accuracy, exact),
        then decoded as `specc translate` decodes (encoder.onnx once, step.onnx per token,
        greedy or beam): `<method>_exact`, the share of outputs equal to the target."""
        import numpy as np

        from specc.runtime import Seq2Seq
        from specc.runtime.contracts import SOURCE_LENGTHS

        scores = token_scores(job.out, job.examples.y, job.spec["train"], ("accuracy", "exact"))
        if not job.graphs:  # scoring another model file (a quantized model.onnx): no decoding
            return scores
        feeds, y = job.examples.feeds, job.examples.y
        s2s = Seq2Seq(job.run, device=job.device)
        source = feeds[s2s.info["source"]["name"]]
        method = job.decode.get("method", "greedy")
        beam = int(job.decode.get("beam_size", 4))
        written = []
        for start in range(0, len(y), 256):
            part = slice(start, start + 256)
            lengths = feeds[SOURCE_LENGTHS][part] if SOURCE_LENGTHS in feeds else None
            written += s2s.decode(source[part], lengths, method=method, beam_size=beam)
        wanted = [[t for t in row if t >= 0][:-1] for row in y]  # without -100 and <eos>
        right = np.mean([w == t for w, t in zip(written, wanted, strict=True)])
        scores[f"{'beam' + str(beam) if method == 'beam' else method}_exact"] = float(right)
        return scores

    # -- checks

    def check(self, parsed):
        """The encoder reads the source; the decoder reads target tokens left to right, the
        encoder's layers, and the source's lengths. Every decoder layer works one step at a time."""
        src = parsed.source
        errors = []
        section = {layer.name: parsed.section(i) for i, layer in enumerate(parsed.layers)}
        section[TARGET_IN] = "decoder"
        has_cache = any(
            layer.cached_attention
            for i, layer in enumerate(parsed.layers)
            if parsed.section(i) == "decoder"
        )
        for i, layer in enumerate(parsed.layers):
            path, refs = parsed.origins[i].path, layer.from_ or []
            if parsed.section(i) == "encoder":
                bad = [r for r in refs if section.get(r) == "decoder"]
                if bad:
                    errors.append(
                        src.error(
                            path + ("from",),
                            f"{layer.name}: the encoder cannot read the decoder's '{bad[0]}'",
                        )
                    )
                continue
            errors += _decoder_layer_rules(src, layer, path, refs, section, has_cache)
        return errors

    def bind(self, parsed, index):
        """`initial_state: {from: X}`: X is an encoder layer; the layer learns what X gives."""
        src, origins = parsed.source, parsed.origins
        layers, errors = list(parsed.layers), []
        for i, layer in enumerate(parsed.layers):
            name = layer.state_from
            if name is None:
                continue
            where = origins[i].path + ("initial_state",)
            if parsed.section(i) != "decoder":
                errors.append(
                    src.error(
                        where,
                        "initial_state: {from: ...} starts a seq2seq decoder from its encoder",
                    )
                )
                continue
            k = index.get(name)
            if k is None or parsed.section(k) != "encoder":
                encoder = [n for n, j in index.items() if parsed.section(j) == "encoder"]
                errors.append(
                    src.error(
                        where + ("from",),
                        f"'{name}' is not an encoder layer",
                        did_you_mean(name, encoder),
                    )
                )
                continue
            layers[i] = layer.bind_state_source(_state_source(parsed.layers[k]))
        return tuple(layers), errors

    def check_data(self, parsed, pairs):
        """A learned position table must cover the longest source (encoder) or target (decoder)."""
        errors = []
        for i, layer in enumerate(parsed.layers):
            if not layer.positional or layer.kind != "learned":
                continue
            encoder = parsed.section(i) == "encoder"
            longest = pairs.longest_source if encoder else pairs.longest_target + 1
            if longest > layer.max_len:
                what = "source" if encoder else "target (with <bos>)"
                errors.append(
                    parsed.source.error(
                        parsed.origins[i].path + ("max_len",),
                        f"the longest {what} has {longest} tokens, but the learned position table "
                        f"has {layer.max_len} rows",
                        f"set max_len to at least {longest}, or use kind: sinusoidal",
                    )
                )
        return errors

    # -- the IR

    def named_outputs(self, parsed):
        return set(_memories(parsed))

    def build(self, b):
        """step() carries every decoder layer's state (recurrent states, key/value caches);
        encode() returns the memories the decoder reads and its first state."""
        parsed = b.parsed
        states, starts, cross, cross_lines = [], [], [], []
        decoder = [built for built in b.built if parsed.section(built.index) == "decoder"]
        for built in decoder:
            layer, module, node = built.layer, f"self.{built.ident}", built.node
            if layer.positional:  # a decoder's positions continue from the cache's length
                built.node = replace(
                    node,
                    step_line=f"{node.var} = {module}({built.args[0]}, offset=OFFSET.shape[2])",
                )
            if not layer.carries_state:
                continue
            carried = state_irs(b, built)
            states += carried
            names = [s.var for s in carried]
            starts.append(layer.start_line(module, names, b.final_of.get(layer.state_from or "")))
            if layer.cached_attention:  # attention over a memory: its keys and values, once
                projected = [b.ids.make(f"{layer.name}_memory_{kv}") for kv in ("keys", "values")]
                cross += [
                    StateIR(f"memory.{layer.name}.{kv}", v, layer.memory_dims(built.shapes))
                    for kv, v in zip(("keys", "values"), projected, strict=True)
                ]
                cross_lines.append(f"{', '.join(projected)} = {module}.memory_kv({built.args[1]})")
                names = names + projected
            built.node = replace(
                node, step_line=layer.step_line(module, built.args, node.var, names)
            )
        keys = next((st.var for st in states if st.name.endswith(".keys")), None)
        for built in decoder:
            line = built.node.step_line
            if line and "OFFSET" in line:
                built.node = replace(built.node, step_line=line.replace("OFFSET", keys))
        return TaskIR(states=tuple(states), seq2seq=_seq2seq_ir(b, cross, cross_lines + starts))

    # -- export

    def export(self, job):
        from ..export.seq2seq import export_graphs

        return export_graphs(job)

    # -- the training plan

    def plan_rules(self, parsed, inferred):
        return sequence_output(parsed, inferred, "a seq2seq decoder", "target_vocab")

    def default_metrics(self, parsed) -> list[str]:
        return ["accuracy", "exact"]

    def metrics(self, parsed) -> tuple[str, ...]:
        return ("accuracy", "top", "exact")


def _state_source(source) -> dict:
    """What a decoder needs to know of the layer it starts from: a recurrent layer's final state
    (its stack and size), or a vector."""
    if not source.torch_recurrent:
        return {
            "recurrent": False,
            "type": source.type,
            "num_layers": 1,
            "hidden_size": None,
            "directions": 1,
        }
    return {
        "recurrent": True,
        "type": source.type,
        "num_layers": source.num_layers,
        "hidden_size": source.hidden_size,
        "directions": source.directions,
    }


def _decoder_layer_rules(src, layer, path, refs, section, has_cache) -> list:
    """One decoder layer: what it may read, and that it runs one step at a time."""
    encoder_refs = [r for r in refs if section.get(r) == "encoder"]
    if layer.recurrent:
        return step_by_step(
            src, layer, path, "the decoder", "write", "make the encoder bidirectional instead"
        )
    if layer.attends_memory:
        if len(refs) - bool(layer.lengths) < 2 or refs[1] not in encoder_refs:
            return [
                src.error(
                    path + ("from",),
                    f"{layer.name}: in the decoder, {layer.type} attends over an encoder layer: from: [query, ENCODER_LAYER]",
                    "self-attention over the target needs transformer_decoder_layer (causal, with a cache)",
                )
            ]
        return []
    if layer.cached_attention:
        errors = []
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
                    path + ("causal",), f"{layer.name}: a decoder's self-attention must be causal"
                )
            )
        return errors
    if layer.positional:
        if has_cache:
            return []
        return [
            src.error(
                path + ("type",),
                "positional_encoding in a decoder goes with transformer_decoder_layer "
                "(its cache tells each step its position); a recurrent decoder knows the order already",
            )
        ]
    if not layer.per_step:
        return [
            src.error(
                path + ("type",),
                f"{layer.name}: a {layer.type} layer mixes time steps; a decoder writes one token at a time",
            )
        ]
    if encoder_refs:
        return [
            src.error(
                path + ("from",),
                f"{layer.name}: a {layer.type} layer in the decoder cannot read the encoder's '{encoder_refs[0]}'",
            )
        ]
    return []


def _memories(parsed) -> list[str]:
    """Encoder layers the decoder reads as data (attention memory), in first-use order. Not
    memories: a recurrent layer's state source (read last; encode() turns it into a state) and
    a transformer decoder layer's memory (encode() projects it to keys and values)."""
    names = {layer.name: k for k, layer in enumerate(parsed.layers)}
    found = []
    for i, layer in enumerate(parsed.layers):
        if parsed.section(i) != "decoder":
            continue
        refs = list(layer.from_ or [])
        if layer.state_from:
            refs = refs[:-1]
        if layer.cached_attention:
            refs = refs[:1] + refs[2:]
        for ref in refs:
            if ref in names and parsed.section(names[ref]) == "encoder" and ref not in found:
                found.append(ref)
    return found


def _seq2seq_ir(b, cross: list, start_lines: list) -> Seq2seqIR:
    parsed = b.parsed
    sections = [parsed.section(built.index) for built in b.built]
    decoder = tuple(p for p, s in enumerate(sections) if s == "decoder")
    by_name = {i.name: i for i in b.inputs}
    read = {r for p in decoder for r in b.built[p].layer.from_ or []}
    return Seq2seqIR(
        encoder=tuple(p for p, s in enumerate(sections) if s == "encoder"),
        decoder=decoder,
        source=tuple(i for i in b.inputs if i.name != TARGET_IN),
        target=by_name[TARGET_IN],
        memories=tuple(
            StateIR(f"memory.{m}", b.var_of[m], ("batch", *b.inferred.out_shapes[m]))
            for m in _memories(parsed)
        )
        + tuple(cross),
        step_inputs=tuple(i for i in b.inputs if i.name in read and i.name != TARGET_IN),
        start_lines=tuple(start_lines),
        teacher_forcing=parsed.spec.train.teacher_forcing,
    )
