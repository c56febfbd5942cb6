"""The spec language as pydantic models, and the step from located data to a validated spec.

`parse` asks the spec's task how its layer sections chain together (`tasks/`), expands them into
one flat list of layers (`expand.py`), and validates the spec and every layer, reporting all
problems of the file at their line and column, block bodies included. The result, `Parsed`, is
frozen: later stages return new values and never write into it.
"""

from __future__ import annotations

import copy
import functools
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PositiveInt,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from .diagnostics import Diagnostic, SpecError
from .expand import Expander, Origin, Section
from .layers import LAYERS, Layer
from .load import Source
from .spec_cells import CellSpec
from .spec_data import BuiltinData, DataSpec
from .spec_latent import LatentSpec, NoiseSpec
from .spec_train import SHORTHANDS, ExportSpec, TrainSpec
from .tasks import TASKS, Task, sections_of
from .validation import diagnostics

SPEC_VERSION = 1
Identifier = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=64)]


class Strict(BaseModel):
    model_config = ConfigDict(
        extra="forbid", populate_by_name=True, frozen=True, allow_inf_nan=False
    )


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

    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)
    type: str
    name: str | None = None
    from_: list[str] | None = Field(None, alias="from")
    repeat: PositiveInt = 1


# One expanded layer: a built-in type, picked by its `type` (blocks are expanded before this).
LayerSpec = Annotated[
    Union[tuple(LAYERS.values())],  # noqa: UP007
    Field(discriminator="type"),
]
LAYER_LIST = TypeAdapter(list[LayerSpec])


class BlockDef(Strict):
    """A reusable group of layers; `$name` in its layers is replaced by the use's value."""

    params: dict[Identifier, Any] = Field(
        default_factory=dict, description="Parameters and their defaults."
    )
    layers: list[Any] = Field(
        min_length=1, description="Layers; `from: input` names the block's input."
    )


# ----------------------------------------------------------------------------- the spec

SECTION_DOC = {
    "model": "Layers, in order (one network read from the input).",
    "encoder": "The layers from the input to the code (autoencoder), or that read the source (seq2seq).",
    "decoder": "The layers from the code back to the input (autoencoder), or from the previous "
    "target tokens (input target_in) to the next token's logits, reading encoder layers through "
    "from: (seq2seq).",
    "generator": "The layers from noise z (latent.dim values) to a fake input (gan).",
    "discriminator": "The layers from an input to one logit, real vs fake (gan).",
}


class Spec(Strict):
    """A specc model spec (language version 1), as written: layer sections are expanded into
    `Parsed.layers`, and the inputs specc adds for a task are in `Parsed.inputs`."""

    specc: Literal[1] = Field(description="Spec language version.")
    name: str = Field(
        min_length=1,
        max_length=200,
        description="Model name (class and folder names derive from it).",
    )
    description: str | None = Field(None, description="Free text, copied into generated comments.")
    task: Literal[tuple(TASKS)] = Field(  # type: ignore[valid-type]
        description="How the model trains and serves: "
        + "; ".join(f"{name}: {task.summary}" for name, task in TASKS.items())
        + "."
    )
    inputs: dict[Identifier, InputSpec] = Field(min_length=1, description="Model inputs by name.")
    output: Identifier | None = Field(
        None, description="Name of the model output (default: logits / prediction)."
    )
    labels: list[str] | None = Field(None, description="Class labels, in class-index order.")
    blocks: dict[Identifier, BlockDef] = Field(
        default_factory=dict, description="Reusable layer groups."
    )
    model: list[Any] | None = Field(None, min_length=1, description=SECTION_DOC["model"])
    encoder: list[Any] | None = Field(None, min_length=1, description=SECTION_DOC["encoder"])
    decoder: list[Any] | None = Field(None, min_length=1, description=SECTION_DOC["decoder"])
    generator: list[Any] | None = Field(None, min_length=1, description=SECTION_DOC["generator"])
    discriminator: list[Any] | None = Field(
        None, min_length=1, description=SECTION_DOC["discriminator"]
    )
    latent: LatentSpec | None = Field(
        None,
        description="A VAE latent between encoder and decoder, or a GAN generator's noise: "
        "{type: gaussian, dim, beta}.",
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

    @model_validator(mode="after")
    def _sections_known(self):  # a section listed by a task must be a field here
        missing = {s for t in TASKS.values() for s in t.reads} - set(type(self).model_fields)
        assert not missing, f"tasks read sections Spec does not declare: {missing}"
        return self


def json_schema() -> dict:
    """The spec language's JSON Schema, for editors: `Spec` with what a spec may write where
    validation takes a looser or a normalised form (see _schema_model)."""
    return _schema_model().model_json_schema(by_alias=True)


# ----------------------------------------------------------------------------- the JSON Schema
#
# Validation reads a spec in steps (the expander turns sections and blocks into layers, shorthands
# become mappings), so `Spec` takes layer sections as `list[Any]`. An editor sees the spec as
# written, in one step: the schema model below swaps in typed sections, block bodies and the
# shorthands, all through pydantic's own hooks (a discriminator on `type`, json_schema_input_type,
# json_schema_extra), so the schema follows the models and is never written by hand.

# A block body's `$name`: a block parameter, substituted before the layer is validated.
ParamRef = Annotated[str, StringConstraints(pattern=r"^\$[A-Za-z_][A-Za-z0-9_]*$")]


def _bare(models) -> list[str]:
    """The `type`s of the models that need no key but `type` (they may be written as a word)."""
    return [
        typing.get_args(m.model_fields["type"].annotation)[0]
        for m in models
        if all(not f.is_required() for n, f in m.model_fields.items() if n != "type")
    ]


def _loosened(info) -> tuple:
    """A field that may also hold a `$param` (inside a block body)."""
    kw = {"alias": info.alias, "description": info.description}
    if info.default_factory is not None:
        kw["default_factory"] = info.default_factory
    elif not info.is_required():
        kw["default"] = info.default
    return (Union[info.rebuild_annotation(), ParamRef], Field(**kw))  # noqa: UP007


def _entry(in_block: bool):
    """One item of a layer list: a built-in layer (by its `type`), a layer type's name alone
    (`- relu`), or a use of a block (any other `type`)."""
    layers = [
        create_model(
            cls.__name__ + ("InBlock" if in_block else ""),
            __base__=cls,
            __doc__=cls.__doc__,
            **(
                {n: _loosened(f) for n, f in cls.model_fields.items() if n != "type"}
                if in_block
                else {}
            ),
        )
        for cls in LAYERS.values()
    ]
    builtin = Annotated[Union[tuple(layers)], Field(discriminator="type")]  # noqa: UP007
    word = Annotated[
        Literal[tuple(_bare(LAYERS.values()))],
        Field(title="LayerWord", description="A layer that needs no settings, by its type."),
    ]
    return Union[word, builtin, _BlockUseSchema]  # noqa: UP007


class _BlockUseSchema(BlockUse):
    """A use of a block from `blocks:` (a `type` that is not a built-in layer); its other keys set
    the block's params."""

    model_config = ConfigDict(title="BlockUse")
    type: str = Field(
        description="The block's name in `blocks:`.",
        json_schema_extra={"not": {"enum": list(LAYERS)}},
    )
    from_: Annotated[
        list[str] | None,
        BeforeValidator(
            lambda v: [v] if isinstance(v, str) else v,
            json_schema_input_type=str | list[str] | None,
        ),
    ] = Field(None, alias="from", description="What the block reads (default: the previous layer).")


def _models_in(annotation) -> list:
    """The pydantic models inside an annotation (through unions, Optional and Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def _written_as_word(info, key: str, expand, words=None) -> tuple:
    """A field that may also be written as one word: `optimizer: sgd` for `{type: sgd}` (what
    parse's _expand_shorthands does); the words are the `key`s of the models that need nothing
    else."""
    if words is None:
        words = [
            w
            for m in _models_in(info.annotation)
            if all(not f.is_required() for n, f in m.model_fields.items() if n != key)
            for w in typing.get_args(m.model_fields[key].annotation)
        ]
    kw = {"description": info.description}
    if info.default_factory is not None:
        kw["default_factory"] = info.default_factory
    else:
        kw["default"] = info.default
    annotation = info.rebuild_annotation()
    written = Union[Literal[tuple(words)], annotation]  # noqa: UP007
    return (
        Annotated[annotation, BeforeValidator(expand, json_schema_input_type=written)],
        Field(**kw),
    )


def _per_task(schema: dict) -> None:
    """Which sections each task requires and which it does not read (if/then on `task`), and
    that without `blocks:` every layer's `type` is a built-in one."""
    rules = []
    every = sections_of(TASKS.values())
    for name, task in TASKS.items():
        rules.append(
            {
                "if": {"properties": {"task": {"const": name}}, "required": ["task"]},
                "then": {
                    "required": list(task.sections),
                    "properties": {k: False for k in every if k not in task.reads},
                },
            }
        )
    builtin = {"properties": {"type": {"enum": list(LAYERS)}}}
    rules.append(
        {
            "if": {"not": {"required": ["blocks"]}},
            "then": {"properties": {s: {"items": builtin} for s in SECTION_DOC}},
        }
    )
    schema["allOf"] = rules


@functools.cache
def _schema_model() -> type[BaseModel]:
    """`Spec` as an editor sees it: typed layer sections and block bodies, and the shorthands."""
    entry, in_block = _entry(False), _entry(True)
    sections = {
        name: (list[entry] | None, Field(None, description=doc))
        for name, doc in SECTION_DOC.items()
    }
    block = create_model(
        "BlockDef",
        __base__=BlockDef,
        __doc__=BlockDef.__doc__,
        layers=(
            list[in_block],
            Field(
                min_length=1,
                description="Layers; `from: input` names the block's input, "
                "`$name` a parameter's value.",
            ),
        ),
    )
    train = create_model(
        "TrainSpec",
        __base__=TrainSpec,
        **{
            key: _written_as_word(
                TrainSpec.model_fields[key],
                field,
                lambda v, field=field: {field: v} if isinstance(v, str) else v,
            )
            for (section, key), field in SHORTHANDS.items()
            if section == "train"
        },
    )
    assert {s for s, _ in SHORTHANDS} == {"train"}, (
        "a shorthand outside train: is not in the schema"
    )
    data_words = list(typing.get_args(BuiltinData.model_fields["name"].annotation))

    class Schema(Spec):
        model_config = ConfigDict(title="Spec", json_schema_extra=_per_task)

    model = create_model(
        "Spec",
        __base__=Schema,
        __doc__=Spec.__doc__,
        blocks=(
            dict[Identifier, block],
            Field(default_factory=dict, description="Reusable layer groups."),
        ),
        data=_written_as_word(
            Spec.model_fields["data"],
            "name",
            lambda v: {"type": "builtin", "name": v} if isinstance(v, str) else v,
            data_words,
        ),
        train=(train, Field(default_factory=TrainSpec)),
        **sections,
    )
    return model


# ----------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class Parsed:
    """A validated spec with its layers expanded, each with where it was written."""

    spec: Spec
    inputs: dict  # name -> InputSpec: the spec's own inputs, then those its task adds
    layers: tuple[Layer, ...]  # every layer of every section, flat, in chain order
    origins: tuple[Origin, ...]  # origins[i]: where layers[i] was written, and its section
    source: Source
    task: Task

    def section(self, i: int) -> str:
        return self.origins[i].section


def parse(src: Source) -> Parsed:
    """Located data -> validated Spec and layers (all errors of the file reported together)."""
    raw = copy.deepcopy(src.data)
    _expand_shorthands(raw)
    errors: list[Diagnostic] = []
    task = TASKS.get(raw.get("task")) if isinstance(raw.get("task"), str) else None
    if task is not None:
        errors += _misplaced_sections(raw, src, task)
        layout = task.layout(raw, src, errors)
    else:  # the task error comes from validation; still check the layers a spec may have
        layout = None
        if isinstance(raw.get("model"), list):
            from .tasks.base import Layout

            layout = Layout((Section("model"),))
    added = layout.added_inputs if layout is not None else {}
    declared = list(raw["inputs"]) if isinstance(raw.get("inputs"), dict) else []
    flat, origins = [], []
    if layout is not None:
        expander = Expander(raw, src, errors, declared + list(added))
        flat, origins = expander.run(layout.chain)
    spec = layers = None
    try:
        spec = Spec.model_validate(raw)
    except ValidationError as e:
        errors += diagnostics(e.errors(), raw, src, Spec)
    try:
        layers = tuple(LAYER_LIST.validate_python(flat))
    except ValidationError as e:
        errors += diagnostics(e.errors(), flat, src, None, origins)
    if errors:
        raise SpecError(_sorted(errors))
    inputs = {**spec.inputs, **{n: InputSpec.model_validate(v) for n, v in added.items()}}
    if spec.output in inputs:  # the ONNX graph names its inputs and its output apart
        raise SpecError(
            [
                src.error(
                    ("output",), f"output '{spec.output}' is the name of an input; name it apart"
                )
            ]
        )
    return Parsed(spec, inputs, layers, tuple(origins), src, task)


def _expand_shorthands(raw: dict) -> None:
    """`data: digits` and `optimizer: sgd` (a word where a mapping goes) become mappings."""
    if isinstance(raw.get("data"), str):
        raw["data"] = {"type": "builtin", "name": raw["data"]}
    for (section, key), field_name in SHORTHANDS.items():
        if isinstance(raw.get(section), dict) and isinstance(raw[section].get(key), str):
            raw[section][key] = {field_name: raw[section][key]}


def _misplaced_sections(raw: dict, src: Source, task: Task) -> list[Diagnostic]:
    """A top-level key that only other tasks read (encoder: in a classifier, model: in a GAN)."""
    errors = []
    for key in sections_of(TASKS.values()):
        if key not in raw or key in task.reads:
            continue
        if key == "model":  # what every single-network task reads: say what this one reads
            written = " and ".join(s + ":" for s in task.sections)
            message = f"task: {task.name} is written with {written}, not model:"
        else:
            owners = [t.name for t in TASKS.values() if key in t.reads]
            message = f"{key}: belongs to task: {' or task: '.join(owners)}"
        hint = f"task: {task.name} reads {', '.join(k + ':' for k in task.reads)}"
        errors.append(src.error((key,), message, hint, at_key=True))
    return errors


def _sorted(errors: list[Diagnostic]) -> list[Diagnostic]:
    unique = list(dict.fromkeys(errors))
    return sorted(unique, key=lambda d: (d.pos.line, d.pos.col) if d.pos else (0, 0))
