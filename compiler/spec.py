"""The spec language as pydantic models, and the step from located data to a validated `Spec`.

Before validation, bare-string layers (`- relu`) become mappings, and user-defined `blocks:` are
expanded (with `repeat:` and `$param` substitution) into one flat list of layers, each with a
name and an explicit `from:`. Every layer remembers where in the file it came from, so
pydantic's errors are reported at the right line and column, block bodies included.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PositiveInt,
    StringConstraints,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from .diagnostics import Diagnostic, SpecError, did_you_mean
from .layers import LAYERS
from .load import Source
from .spec_cells import CellSpec
from .spec_data import DataSpec
from .spec_train import SHORTHANDS, ExportSpec, TrainSpec

SPEC_VERSION = 1
Identifier = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=64)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# ----------------------------------------------------------------------------- model inputs


class InputSpec(Strict):
    """One model input; the batch dimension is implicit and dynamic."""

    shape: list[PositiveInt | Identifier] = Field(
        description="Dimensions without the batch: sizes, or names for dynamic dims (e.g. time)."
    )
    dtype: Literal["float32", "int64"] = Field("float32", description="Element type.")

    @field_validator("shape")
    @classmethod
    def _no_batch(cls, v):
        if "batch" in v:
            raise ValueError("'batch' is implicit; list only the dims after it")
        return v


# ----------------------------------------------------------------------------- layers and blocks


class BlockUse(BaseModel):
    """A use of a block from `blocks:`; its other keys set the block's params."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)
    type: str
    name: str | None = None
    from_: list[str] | None = Field(None, alias="from")
    repeat: PositiveInt = 1

    @model_validator(mode="after")
    def _expanded(self):  # block uses are expanded before validation; one left here is unknown
        raise ValueError(f"unknown layer type '{self.type}'")


def _layer_tag(v: Any) -> str:
    t = v.get("type") if isinstance(v, dict) else getattr(v, "type", None)
    return t if t in LAYERS else "block"


LayerSpec = Annotated[
    Union[
        tuple(Annotated[cls, Tag(tag)] for tag, cls in LAYERS.items())
        + (Annotated[BlockUse, Tag("block")],)
    ],  # noqa: UP007
    Discriminator(_layer_tag),
]


class BlockDef(Strict):
    """A reusable group of layers; `$name` in its layers is replaced by the use's value."""

    params: dict[Identifier, Any] = Field(
        default_factory=dict, description="Parameters and their defaults."
    )
    layers: list[Any] = Field(
        min_length=1, description="Layers; `from: input` names the block's input."
    )


# ----------------------------------------------------------------------------- generative parts


class LatentSpec(Strict):
    """The VAE latent: a Gaussian code with a KL term against N(0, I)."""

    type: Literal["gaussian"] = Field("gaussian", description="The latent distribution.")
    dim: PositiveInt = Field(description="Size of the code.")
    beta: float = Field(1.0, ge=0.0, description="Weight of the KL term (beta-VAE).")
    warmup_epochs: float = Field(
        0.0, ge=0.0, description="Raise beta linearly from 0 over this many epochs (KL annealing)."
    )


class NoiseSpec(Strict):
    """Input corruption for a denoising autoencoder."""

    type: Literal["gaussian", "masking"] = Field(
        description="gaussian: add N(0, std^2); masking: zero each input element with probability p."
    )
    std: float = Field(0.1, gt=0.0, description="gaussian: the noise's standard deviation.")
    p: float = Field(0.25, gt=0.0, lt=1.0, description="masking: the chance an element is zeroed.")


# ----------------------------------------------------------------------------- the spec


class Spec(Strict):
    """A specc model spec (language version 1)."""

    specc: Literal[1] = Field(description="Spec language version.")
    name: str = Field(
        min_length=1,
        max_length=200,
        description="Model name (class and folder names derive from it).",
    )
    description: str | None = Field(None, description="Free text, copied into generated comments.")
    task: Literal[
        "classification", "regression", "language_model", "autoencoder", "gan", "seq2seq"
    ] = Field(
        description="How the model trains and serves; language_model: next-token prediction "
        "over text, sampled with `specc sample`; seq2seq: an encoder and a decoder that writes "
        "a target sequence token by token, run with `specc translate`."
    )
    inputs: dict[Identifier, InputSpec] = Field(min_length=1, description="Model inputs by name.")
    output: Identifier | None = Field(
        None, description="Name of the model output (default: logits / prediction)."
    )
    labels: list[str] | None = Field(None, description="Class labels, in class-index order.")
    blocks: dict[Identifier, BlockDef] = Field(
        default_factory=dict, description="Reusable layer groups."
    )
    model: list[LayerSpec] = Field(
        min_length=1,
        description="Layers, in order (task: autoencoder writes encoder: and decoder: instead).",
    )
    encoder: list[Any] | None = Field(
        None,
        description="task: autoencoder: the layers from the input to the code; task: seq2seq: "
        "the layers that read the source.",
    )
    decoder: list[Any] | None = Field(
        None,
        description="task: autoencoder: the layers from the code back to the input; task: "
        "seq2seq: the layers from the previous target tokens (input target_in) to the next "
        "token's logits, reading encoder layers through from:.",
    )
    generator: list[Any] | None = Field(
        None, description="task: gan: the layers from noise z (latent.dim values) to a fake input."
    )
    discriminator: list[Any] | None = Field(
        None, description="task: gan: the layers from an input to one logit (real vs fake)."
    )
    latent: LatentSpec | None = Field(
        None, description="A VAE latent between encoder and decoder: {type: gaussian, dim, beta}."
    )
    noise: NoiseSpec | None = Field(
        None, description="Denoising: corrupt the inputs in training only (the target stays clean)."
    )
    cells: dict[Identifier, CellSpec] = Field(
        default_factory=dict, description="Custom recurrent cells written as equations."
    )
    data: DataSpec | None = Field(None, description="Training data.")
    train: TrainSpec = Field(default_factory=TrainSpec)
    export: ExportSpec = Field(default_factory=ExportSpec)


# ----------------------------------------------------------------------------- expansion


@dataclass(frozen=True)
class Origin:
    """Where an expanded layer was written, and the block use that produced it, if any."""

    path: tuple
    block_use: tuple | None = None


@dataclass(frozen=True)
class Parsed:
    spec: Spec
    origins: tuple[Origin, ...]
    source: Source


STRUCTURAL = ("type", "name", "from", "repeat")


def parse(src: Source) -> Parsed:
    """Located data -> validated Spec (all errors of the file reported together)."""
    raw = copy.deepcopy(src.data)
    errors: list[Diagnostic] = []
    if isinstance(raw.get("data"), str):
        raw["data"] = {"type": "builtin", "name": raw["data"]}
    for (section, key), field_name in SHORTHANDS.items():
        if isinstance(raw.get(section), dict) and isinstance(raw[section].get(key), str):
            raw[section][key] = {field_name: raw[section][key]}
    origins: list[Origin] = []
    if raw.get("task") == "seq2seq":
        raw["model"], origins = _seq2seq(raw, src, errors)
    elif raw.get("task") == "gan" or "generator" in raw or "discriminator" in raw:
        raw["model"], origins = _gan(raw, src, errors)
    elif raw.get("task") == "autoencoder" or "encoder" in raw or "decoder" in raw:
        raw["model"], origins = _autoencoder(raw, src, errors)
    elif isinstance(raw.get("model"), list):
        raw["model"], origins = _Expander(raw, src, errors).run()
    if "latent" in raw and raw.get("task") not in ("autoencoder", "gan"):
        errors.append(
            src.error(
                ("latent",),
                "latent: sits between an encoder: and a decoder:; this spec has neither",
                "write task: autoencoder with encoder: and decoder: sections",
                at_key=True,
            )
        )
    try:
        spec = Spec.model_validate(raw)
    except ValidationError as e:
        errors.extend(_diagnostics(e, raw, src, origins))
        spec = None
    if spec is not None:
        errors.extend(_bind_cells(spec, src, origins))
    if errors:
        raise SpecError(_sorted(errors))
    return Parsed(spec, tuple(origins), src)


LATENT_LAYER = "latent"


def _autoencoder(raw: dict, src: Source, errors: list) -> tuple[list, list]:
    """encoder -> (latent) -> decoder as one chain; each layer remembers its section."""
    missing = [k for k in ("encoder", "decoder") if not isinstance(raw.get(k), list)]
    if raw.get("task") != "autoencoder":
        errors.append(
            src.error(
                ("encoder",) if "encoder" in raw else ("decoder",),
                "encoder: and decoder: sections belong to task: autoencoder or task: seq2seq",
                at_key=True,
            )
        )
    for key in missing:
        errors.append(src.error((), f"task: autoencoder needs a '{key}:' list of layers"))
    if "model" in raw:
        errors.append(
            src.error(
                ("model",),
                "an autoencoder is written as encoder: and decoder:, not model:",
                at_key=True,
            )
        )
    raw.pop("model", None)
    if missing:  # already reported; a placeholder keeps validation from adding a second error
        return [{"type": "identity", "name": "placeholder"}], []
    sections: list = [("encoder",)]
    latent = raw.get("latent")
    if isinstance(latent, dict):
        dim = latent.get("dim")
        sections.append(
            {"type": "gaussian_latent", "name": LATENT_LAYER, "dim": dim, "at": ("latent",)}
        )
    sections.append(("decoder",))
    flat, origins = _Expander(raw, src, errors).run(tuple(sections))
    raw["encoder"] = raw["decoder"] = None  # expanded into `model`
    return flat, origins


SOURCE_LENGTHS = "source_lengths"  # a token source's lengths (padding), injected as an input
TARGET_IN = "target_in"  # the decoder's input: <bos> and the target shifted right by one


def _seq2seq(raw: dict, src: Source, errors: list) -> tuple[list, list]:
    """encoder (from the source) and decoder (from target_in) as two chains of one model.

    The decoder reads encoder layers through `from:` (attention memory) or `initial_state:
    {from: ...}`; the inputs it needs beyond the source are added here, so a spec declares
    only its source.
    """
    placeholder = [{"type": "identity", "name": "placeholder"}], []
    missing = [k for k in ("encoder", "decoder") if not isinstance(raw.get(k), list)]
    for key in missing:
        errors.append(src.error((), f"task: seq2seq needs a '{key}:' list of layers"))
    if "model" in raw:
        errors.append(
            src.error(
                ("model",), "a seq2seq model is written as encoder: and decoder:", at_key=True
            )
        )
        raw.pop("model")
    inputs = raw.get("inputs")
    if not isinstance(inputs, dict) or len(inputs) != 1:
        errors.append(
            src.error(
                ("inputs",) if "inputs" in raw else (),
                "a seq2seq model declares one input, its source (token ids [time] or an image)",
                f"'{SOURCE_LENGTHS}' and '{TARGET_IN}' are added for you",
            )
        )
        return placeholder
    if missing:
        return placeholder
    ((source, declared),) = inputs.items()
    added = {TARGET_IN: {"shape": ["steps"], "dtype": "int64"}}
    if (
        isinstance(declared, dict)
        and declared.get("dtype") == "int64"
        and len(declared.get("shape") or []) == 1
    ):  # token ids: padded, so their lengths come too
        added = {SOURCE_LENGTHS: {"shape": [], "dtype": "int64"}, **added}
    for name in added:
        if name == source:
            errors.append(
                src.error(
                    ("inputs", source),
                    f"'{name}' is added by specc; rename the source",
                    at_key=True,
                )
            )
            return placeholder
    raw["inputs"] = {**inputs, **added}
    starts = {("encoder",): source, ("decoder",): TARGET_IN}
    flat, origins = _Expander(raw, src, errors).run((("encoder",), ("decoder",)), starts)
    raw["encoder"] = raw["decoder"] = None
    return flat, origins


GAN_NOISE = "z"  # the generator's input: a draw from N(0, I) of latent.dim values


def _gan(raw: dict, src: Source, errors: list) -> tuple[list, list]:
    """generator (from z) and discriminator (from the data input) as two chains of one model."""
    placeholder = [{"type": "identity", "name": "placeholder"}], []
    if raw.get("task") != "gan":
        key = "generator" if "generator" in raw else "discriminator"
        errors.append(src.error((key,), f"{key}: belongs to task: gan", at_key=True))
        return placeholder
    missing = [k for k in ("generator", "discriminator") if not isinstance(raw.get(k), list)]
    for key in missing:
        errors.append(src.error((), f"task: gan needs a '{key}:' list of layers"))
    latent = raw.get("latent")
    if not isinstance(latent, dict) or not isinstance(latent.get("dim"), int):
        errors.append(
            src.error(
                ("latent",) if "latent" in raw else (),
                "a GAN needs the size of its generator's input: latent: {dim: N}",
            )
        )
        return placeholder
    inputs = raw.get("inputs")
    if not isinstance(inputs, dict) or len(inputs) != 1 or GAN_NOISE in inputs:
        errors.append(
            src.error(
                ("inputs",),
                f"a GAN takes one data input (not named '{GAN_NOISE}', the generator's noise)",
            )
        )
        return placeholder
    if "model" in raw:
        errors.append(
            src.error(("model",), "a GAN is written as generator: and discriminator:", at_key=True)
        )
        raw.pop("model")
    if missing:
        return placeholder
    (data_input,) = inputs
    raw["inputs"] = {**inputs, GAN_NOISE: {"shape": [latent["dim"]]}}
    starts = {("generator",): GAN_NOISE, ("discriminator",): data_input}
    flat, origins = _Expander(raw, src, errors).run((("generator",), ("discriminator",)), starts)
    raw["generator"] = raw["discriminator"] = None
    return flat, origins


def _bind_cells(spec: Spec, src: Source, origins: list) -> list[Diagnostic]:
    """Give each `recurrent` layer the definition of the cell it names."""
    errors = []
    for i, layer in enumerate(spec.model):
        if layer.type != "recurrent":
            continue
        if layer.cell in spec.cells:
            layer.definition = spec.cells[layer.cell]
        else:
            where = origins[i].path + ("cell",) if i < len(origins) else ("model", i, "cell")
            hint = did_you_mean(layer.cell, spec.cells) or (
                f"cells: {', '.join(spec.cells)}" if spec.cells else "define it under cells:"
            )
            errors.append(src.error(where, f"no cell named '{layer.cell}'", hint))
    return errors


def _sorted(errors: list[Diagnostic]) -> list[Diagnostic]:
    unique = list(dict.fromkeys(errors))
    return sorted(unique, key=lambda d: (d.pos.line, d.pos.col) if d.pos else (0, 0))


class _Expander:
    def __init__(self, raw: dict, src: Source, errors: list[Diagnostic]):
        self.raw, self.src, self.errors = raw, src, errors
        blocks = raw.get("blocks")
        self.blocks = blocks if isinstance(blocks, dict) else {}
        inputs = raw.get("inputs")
        self.inputs = list(inputs) if isinstance(inputs, dict) else []
        self.counters: dict[str, int] = defaultdict(int)
        self.out: list[dict] = []
        self.origins: list[Origin] = []
        self.aliases: dict[str, str] = {}  # block instance name -> its last layer

    def run(self, sections=(("model",),), starts: dict | None = None):
        """Expand the layer lists at `sections` (paths into the spec) into one flat chain; a
        section given as a dict instead is one synthetic layer (the VAE latent). `starts` names
        what a section's first layer reads when it does not continue the chain (a GAN's halves)."""
        for name in self.blocks:
            if name in LAYERS:
                self.errors.append(
                    self.src.error(
                        ("blocks", name),
                        f"block name '{name}' is a built-in layer type",
                        at_key=True,
                    )
                )
        first = self.raw.get(sections[0][0])
        items = first if isinstance(first, list) else []
        lengths = {i.get("lengths") for i in items if isinstance(i, dict)}
        data_inputs = [n for n in self.inputs if n not in lengths]  # not only read as `lengths:`
        prev = data_inputs[0] if len(data_inputs) == 1 else None
        for section in sections:
            if starts and not isinstance(section, dict) and section in starts:
                prev = starts[section]
            if isinstance(section, dict):  # a synthetic layer, located at its section's key
                path = section.pop("at")
                self.out.append({**section, "from": [prev] if prev else []})
                self.origins.append(Origin(path, None))
                prev = section["name"]
                continue
            prev = self.emit(
                self.raw.get(section[0]),
                section,
                scope=None,
                prefix="",
                prev=prev,
                params=None,
                stack=(),
                use=None,
            )
        for layer in self.out:
            if isinstance(layer.get("from"), list):
                layer["from"] = [
                    self.aliases.get(n, n) if isinstance(n, str) else n for n in layer["from"]
                ]
        return self.out, self.origins

    def auto_name(self, kind: str, prefix: str) -> str:
        self.counters[prefix + kind] += 1
        return f"{prefix}{kind}_{self.counters[prefix + kind]}"

    def emit(self, items, path, scope, prefix, prev, params, stack, use):
        """Append `items` (a layer list at `path`) to the flat list; return the last layer name."""
        if not isinstance(items, list):
            return prev
        for i, item in enumerate(items):
            ipath = path + (i,)
            if isinstance(item, str):
                item = {"type": item}
            if not isinstance(item, dict):
                self.errors.append(
                    self.src.error(
                        ipath, "a layer is a mapping with a 'type:' key, or a layer type name"
                    )
                )
                continue
            if params is not None:
                item = self.substitute(item, params, ipath)
            kind = item.get("type")
            if not isinstance(kind, str):
                self.errors.append(
                    self.src.error(ipath, "layer has no 'type:'", did_you_mean("relu", []))
                )
                continue
            repeat = item.get("repeat", 1)
            if not isinstance(repeat, int) or isinstance(repeat, bool) or repeat < 1:
                self.errors.append(
                    self.src.error(
                        ipath + ("repeat",), f"repeat must be a positive integer, got {repeat!r}"
                    )
                )
                continue
            refs = self.refs(item.get("from"), scope, ipath)
            if kind in LAYERS:
                prev = self.emit_layer(item, kind, repeat, refs, ipath, scope, prefix, prev, use)
            elif kind in self.blocks:
                prev = self.emit_block(
                    item, kind, repeat, refs, ipath, scope, prefix, prev, stack, use
                )
            else:
                hint = did_you_mean(kind, list(LAYERS) + list(self.blocks))
                self.errors.append(
                    self.src.error(ipath + ("type",), f"unknown layer type '{kind}'", hint)
                )
        return prev

    def refs(self, value, scope, ipath):
        if value is None:
            return None
        names = [value] if isinstance(value, str) else value
        if not isinstance(names, list):
            return value  # pydantic reports the type error
        if scope is None:
            return list(names)
        return [scope.get(n, n) if isinstance(n, str) else n for n in names]

    def emit_layer(self, item, kind, repeat, refs, ipath, scope, prefix, prev, use):
        local = item.get("name")
        base = f"{prefix}{local}" if isinstance(local, str) else None
        for r in range(repeat):
            layer = {k: v for k, v in item.items() if k != "repeat"}
            name = base if base is not None else self.auto_name(kind, prefix)
            if base is not None and repeat > 1:
                name = f"{base}_{r + 1}"
            layer["name"] = name
            if r == 0 and refs is not None:
                layer["from"] = list(refs) if isinstance(refs, list) else refs
            elif prev is not None:  # a repeat reads the copy before it, and the same memory
                extra = refs[1:] if isinstance(refs, list) else []
                layer["from"] = [prev, *extra]
            else:
                self.errors.append(
                    self.src.error(
                        ipath,
                        f"this layer must say which input it reads with 'from:' (the model has inputs {', '.join(self.inputs) or 'none'})",
                    )
                )
                layer["from"] = []
            lengths = item.get("lengths")  # a recurrent layer's lengths input is read like `from:`
            if isinstance(lengths, str) and isinstance(layer["from"], list):
                layer["from"].append(scope.get(lengths, lengths) if scope else lengths)
            init = item.get("initial_state")  # a state from another layer is read like `from:`
            if isinstance(init, dict) and isinstance(init.get("from"), str):
                if isinstance(layer["from"], list):
                    layer["from"].append(
                        scope.get(init["from"], init["from"]) if scope else init["from"]
                    )
            self.out.append(layer)
            self.origins.append(Origin(ipath, use))
            prev = name
        if base is not None and repeat > 1:  # the name of a repeated layer means its last copy
            self.aliases[base] = prev
        if scope is not None and isinstance(local, str):
            scope[local] = prev
        return prev

    def emit_block(self, item, kind, repeat, refs, ipath, scope, prefix, prev, stack, use):
        if kind in stack:
            self.errors.append(
                self.src.error(
                    ipath + ("type",),
                    f"block '{kind}' uses itself (through {' -> '.join(stack + (kind,))})",
                )
            )
            return prev
        block = self.blocks[kind]
        if not isinstance(block, dict):
            return prev  # pydantic reports the malformed block
        declared = block.get("params") if isinstance(block.get("params"), dict) else {}
        params = dict(declared)
        for key, value in item.items():
            if key in STRUCTURAL:
                continue
            if key not in declared:
                hint = did_you_mean(key, declared) or (
                    f"block '{kind}' takes: {', '.join(declared)}"
                    if declared
                    else f"block '{kind}' declares no params"
                )
                self.errors.append(
                    self.src.error(
                        ipath + (key,),
                        f"block '{kind}' has no parameter '{key}'",
                        hint,
                        at_key=True,
                    )
                )
            params[key] = value
        if refs is not None and len(refs) != 1:
            self.errors.append(self.src.error(ipath + ("from",), "a block reads exactly one input"))
            return prev
        if refs is not None:
            prev = refs[0]
        local = item.get("name")
        for r in range(repeat):
            inst = local if isinstance(local, str) else self.auto_name(kind, prefix)[len(prefix) :]
            if isinstance(local, str) and repeat > 1:
                inst = f"{local}_{r + 1}"
            inner_scope = {"input": prev}
            prev = self.emit(
                block.get("layers"),
                ("blocks", kind, "layers"),
                inner_scope,
                f"{prefix}{inst}_",
                prev,
                params,
                stack + (kind,),
                use or ipath,
            )
            self.aliases[f"{prefix}{inst}"] = prev
        if scope is not None and isinstance(local, str):
            scope[local] = prev
        return prev

    def substitute(self, value, params, path):
        if isinstance(value, str) and value.startswith("$"):
            key = value[1:]
            if key in params:
                return params[key]
            self.errors.append(
                self.src.error(
                    path, f"'{value}' is not a parameter of this block", did_you_mean(key, params)
                )
            )
            return value
        if isinstance(value, dict):
            return {k: self.substitute(v, params, path + (k,)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.substitute(v, params, path + (i,)) for i, v in enumerate(value)]
        return value


# ----------------------------------------------------------------------------- pydantic errors -> diagnostics


def _walk(raw, loc) -> tuple[tuple, object, bool]:
    """Follow a pydantic loc through the data, dropping union tags. Returns (path, node, found)."""
    node, path = raw, []
    for part in loc:
        if isinstance(node, dict) and part in node:
            node = node[part]
            path.append(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
            path.append(part)
        elif (
            isinstance(node, dict)
            and isinstance(part, str)
            and (
                part == node.get("type") or part == "block"  # union tags in pydantic locs
            )
        ):
            continue
        elif isinstance(part, str) and part.startswith(("function-", "[key]")):
            continue
        else:
            path.append(part)
            return tuple(path), None, False
    return tuple(path), node, True


def _section_fields(path: tuple, raw) -> set[str]:
    """Keys allowed where `path` points, for 'did you mean' hints."""
    if len(path) >= 2 and path[0] == "model" and isinstance(path[1], int):
        layer = raw["model"][path[1]]
        cls = LAYERS.get(layer.get("type")) if isinstance(layer, dict) else None
        return {f.alias or k for k, f in cls.model_fields.items()} if cls else set()
    if len(path) == 2 and path[0] == "inputs":
        return set(InputSpec.model_fields)
    if len(path) == 2 and path[0] == "blocks":
        return set(BlockDef.model_fields)
    cls, node = Spec, raw
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
        field = cls.model_fields.get(key) if isinstance(key, str) else None
        if field is None:
            return set()
        cls = _model_class(field.annotation, node)
        if cls is None:
            return {"type"}
    return set(cls.model_fields)


def _model_class(annotation, node):
    """The pydantic model an annotation holds (picking a union member by the node's type)."""
    candidates = [
        a for a in _flatten(annotation) if isinstance(a, type) and issubclass(a, BaseModel)
    ]
    if len(candidates) == 1:
        return candidates[0]
    kind = node.get("type") if isinstance(node, dict) else None
    for c in candidates:
        field = c.model_fields.get("type")
        if field is not None and kind in getattr(field.annotation, "__args__", ()):
            return c
    return None


def _flatten(annotation):
    from typing import get_args

    args = get_args(annotation)
    if not args:
        return [annotation]
    return [leaf for a in args for leaf in _flatten(a)]


def _diagnostics(
    exc: ValidationError, raw: dict, src: Source, origins: list[Origin]
) -> list[Diagnostic]:
    out = []
    for err in exc.errors():
        path, _, found = _walk(raw, err["loc"])
        where = path
        note = None
        if (
            len(path) >= 2
            and path[0] == "model"
            and isinstance(path[1], int)
            and path[1] < len(origins)
        ):
            origin = origins[path[1]]
            where = origin.path + path[2:]
            if origin.block_use is not None:
                use_pos = src.pos(origin.block_use)
                note = f"in a block used at line {use_pos.line}" if use_pos else None
        kind = err["type"]
        key = path[-1] if path else None
        if path == ("specc",) and kind != "missing":
            out.append(
                src.error(
                    path,
                    f"unsupported spec language version {err.get('input')!r}; this specc reads 'specc: {SPEC_VERSION}'",
                )
            )
            continue
        if kind == "missing":
            parent = where[:-1]
            message = f"missing required key '{key}'"
            diag = src.error(parent, message, note)
        elif kind == "extra_forbidden":
            message = f"unknown key '{key}'"
            hint = did_you_mean(key, _section_fields(path[:-1], raw)) or note
            diag = src.error(where, message, hint, at_key=True)
        else:
            msg = err["msg"].removeprefix("Value error, ")
            msg = msg[:1].lower() + msg[1:]
            label = f"'{key}'" if isinstance(key, str) else "this value"
            shown = repr(err.get("input"))
            if kind.endswith(("_type", "_parsing")) and len(shown) < 60:
                msg += f", got {shown}"
            diag = src.error(where, f"invalid {label}: {msg}", note)
        out.append(diag)
    return out
