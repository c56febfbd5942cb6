"""The `data:` section of a spec: where training examples come from and how they are split."""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveInt,
    ValidationInfo,
    field_validator,
    model_validator,
)

from . import datasets, limits
from .layers.base import Pair


def _listed(kind: datasets.Kind) -> str:
    """The data sets of a kind with their descriptions, for a field's description."""
    return "; ".join(f"{e.name} ({e.description})" for e in datasets.entries(kind))


def _and(names) -> str:
    names = list(names)
    return " and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)


def _defaults(kind: datasets.Kind, key: str) -> str:
    """Which sets take `key` and its defaults, e.g. 'road: default 2000; adding: default 3000'."""
    takers = [e for e in datasets.entries(kind) if key in e.params]
    if len({repr(e.params[key]) for e in takers}) > 1:
        return "; ".join(f"{e.name}: default {e.params[key]}" for e in takers)
    default = f"default {takers[0].params[key]}"
    return (
        default
        if len(takers) == len(datasets.entries(kind))
        else f"{_and(e.name for e in takers)}; {default}"
    )


def _only_accepted(value, info: ValidationInfo, kind: datasets.Kind, by: str):
    """A generation key given for a data set that does not take it is an error at that key,
    naming the sets that do; what each set takes comes from its registry entry. `by` is the
    field naming the set (validated before, so in `info.data` when it is valid)."""
    name, key = info.data.get(by), info.field_name
    if value is not None and name is not None and key not in datasets.get(name, kind).params:
        raise ValueError(f"{key} applies to {_and(datasets.accepting(key, kind))}, not {name}")
    return value


def _generated(count: int | None) -> int | None:
    """Data made at compile time (texts, pairs) is made by every `specc check`: refuse, before
    making it, more examples than the limit allows."""
    most = limits.GENERATED_EXAMPLES.value
    if count is not None and count > most:
        raise ValueError(
            limits.GENERATED_EXAMPLES.exceeded(f"{count:,} examples to generate at compile time")
        )
    return count


class Strict(BaseModel):
    model_config = ConfigDict(
        extra="forbid", populate_by_name=True, frozen=True, allow_inf_nan=False
    )


class Augment(Strict):
    """Image augmentation, applied by train.py to each training batch of a [C, H, W] input."""

    crop: NonNegativeInt = Field(
        0, description="Pad by this many pixels (edge values), then crop back at a random offset."
    )
    flip: bool = Field(False, description="Mirror left-right with probability 1/2.")
    rotate: float = Field(0.0, ge=0.0, le=45.0, description="Rotate by up to this many degrees.")
    color_jitter: float = Field(
        0.0, ge=0.0, le=1.0, description="Scale brightness and contrast by up to 1 +- this."
    )


class Files(Strict):
    """One file (split by val_split/test_split), or separate train/validation/test files."""

    path: str | None = Field(None, description="The data, relative to the spec.")
    train: str | None = Field(None, description="Training examples (instead of path).")
    validation: str | None = Field(
        None, description="Validation examples (with train:; default: val_split of train)."
    )
    test: str | None = Field(None, description="Test examples (with train:; never trained on).")

    @model_validator(mode="after")
    def _path_or_train(self):
        if (self.path is None) == (self.train is None):
            raise ValueError(
                "give path (split by val_split/test_split) or train (with validation/test)"
            )
        if self.path is not None and (self.validation or self.test):
            raise ValueError("validation and test files go with train:, not path:")
        return self

    def files(self) -> list[tuple[str, str, str]]:
        """(field, path, split) for each file given; split is train, val or test."""
        if self.path is not None:
            return [("path", self.path, "")]
        given = [("train", self.train, "train"), ("validation", self.validation, "val")]
        return [(f, p, s) for f, p, s in [*given, ("test", self.test, "test")] if p]


class DataBase(Strict):
    val_split: float = Field(
        0.2, ge=0.0, le=0.9, description="Fraction held out for validation (0: validate on train)."
    )
    test_split: float = Field(
        0.0, ge=0.0, le=0.5, description="Fraction held out for the final test (never trained on)."
    )
    standardize: bool = Field(
        False,
        description="Scale inputs to zero mean, unit variance (statistics from the train split, baked into the model).",
    )
    augment: Augment | None = Field(
        None,
        description="Random changes to the training images, drawn afresh each epoch (seeded; the "
        "validation and test splits are never augmented).",
    )
    classes: list[str | int] | None = Field(
        None,
        min_length=1,
        description="Keep only the examples of these classes (label names), renumbered 0, 1, ... in this order.",
    )

    @model_validator(mode="after")
    def _room_to_train(self):
        if self.val_split + self.test_split > 0.9:
            raise ValueError("val_split + test_split leave less than 10% to train on")
        return self


class BuiltinData(DataBase):
    type: Literal["builtin"]
    name: Literal[datasets.names("builtin")] = Field(
        description=f"Offline dataset, nothing downloaded: {_listed('builtin')}."
    )
    resize: Pair | None = Field(
        None,
        description=f"Resize images to [height, width] (for {_and(datasets.accepting('resize', 'builtin'))}).",
    )
    count: PositiveInt | None = Field(
        None, description=f"Examples to generate ({_defaults('builtin', 'count')})."
    )
    length: PositiveInt | None = Field(
        None, ge=2, description=f"Sequence length ({_defaults('builtin', 'length')})."
    )

    @field_validator("name", mode="before")
    @classmethod
    def _registered(cls, name):
        return datasets.known(name, "builtin")

    @field_validator("resize", "count", "length")
    @classmethod
    def _accepted(cls, value, info: ValidationInfo):
        return _only_accepted(value, info, "builtin", "name")


class NpzData(DataBase):
    type: Literal["npz"]
    path: str = Field(description="Path to a .npz file, relative to the spec.")
    x: str = Field("x", description="Array of inputs.")
    y: str = Field("y", description="Array of targets.")


class Columns(Files):
    label: str = Field(description="Column holding the target.")
    features: list[str] | None = Field(
        None, description="Input columns (default: all but the label and `exclude`)."
    )
    exclude: list[str] = Field(default_factory=list, description="Columns to leave out.")


class CsvData(Columns, DataBase):
    """A .csv file with a header row, read row by row."""

    type: Literal["csv"]
    delimiter: str = Field(",", min_length=1, max_length=1)


class ParquetData(Columns, DataBase):
    """A Parquet file (pyarrow), read a row group at a time; columns of numbers or of fixed-length
    lists of numbers."""

    type: Literal["parquet"]


class HFDatasetData(Columns, DataBase):
    """A Hugging Face `datasets` folder written by save_to_disk (a Dataset, or a DatasetDict whose
    train/validation/test splits are used as they are); read with load_from_disk, nothing fetched."""

    type: Literal["datasets"]


class ImageFolderData(Files, DataBase):
    """Folders with one sub-folder per class (its name is the label), relative to the spec."""

    type: Literal["images"]
    resize: Pair | None = Field(
        None, description="Resize every image to [height, width] (default: the input's size)."
    )
    color: Literal["gray", "rgb"] = Field("gray", description="Channels: gray (1) or rgb (3).")


class TextData(DataBase):
    """Text: a corpus for a language model, or labelled texts for sequence classification."""

    type: Literal["text"]
    path: str | None = Field(
        None,
        description="A .txt corpus or a folder of .txt/.md files (language model), or .jsonl / "
        ".csv / .tsv with a text and a label per example (classification); relative to the spec.",
    )
    text: str | None = Field(None, description="The corpus itself, inline.")
    generate: Literal[datasets.names("text")] | None = Field(
        None, description=f"A generated labelled set: {_listed('text')}."
    )
    count: PositiveInt | None = Field(
        None, description=f"Examples to generate ({_defaults('text', 'count')})."
    )
    level: Literal["char", "word"] = Field("char", description="Tokens: characters or words.")
    lowercase: bool = Field(False, description="Lower-case the text before tokenizing.")
    seq_len: PositiveInt = Field(64, description="Corpus: tokens per training window.")
    max_len: PositiveInt | None = Field(
        None, description="Labelled texts: keep the first N tokens."
    )
    min_count: PositiveInt = Field(
        1, description="Tokens seen fewer times in the train split become <unk>."
    )
    text_field: str = Field("text", description="JSONL key / CSV column of the text.")
    label_field: str = Field("label", description="JSONL key / CSV column of the label.")

    @field_validator("generate", mode="before")
    @classmethod
    def _registered(cls, name):
        return datasets.known(name, "text")

    @field_validator("count")
    @classmethod
    def _accepted(cls, value, info: ValidationInfo):
        return _generated(_only_accepted(value, info, "text", "generate"))

    @model_validator(mode="after")
    def _one_source(self):
        given = [k for k in ("path", "text", "generate") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of path, text or generate")
        if self.count is not None and self.generate is None:
            raise ValueError("count applies to generated text (generate:)")
        return self


class PairsData(DataBase):
    """Source/target pairs for task: seq2seq, generated or from a tab-separated file."""

    type: Literal["pairs"]
    path: str | None = Field(
        None, description="A text file of `source<TAB>target` lines, relative to the spec."
    )
    generate: Literal[datasets.names("pairs")] | None = Field(
        None, description=f"A generated set: {_listed('pairs')}."
    )
    count: PositiveInt | None = Field(
        None, description=f"Pairs to generate ({_defaults('pairs', 'count')})."
    )
    lengths: Pair = Field(
        (5, 12), description="Generated strings: the shortest and longest source length."
    )
    hold_out_lengths: list[PositiveInt] = Field(
        default_factory=list,
        description="Generated strings: lengths never trained on (test them afterwards).",
    )
    level: Literal["char", "word"] = Field("char", description="Tokens: characters or words.")
    lowercase: bool = Field(False, description="Lower-case both sides before tokenizing.")

    @field_validator("generate", mode="before")
    @classmethod
    def _registered(cls, name):
        return datasets.known(name, "pairs")

    @field_validator("count", "lengths", "hold_out_lengths")
    @classmethod
    def _accepted(cls, value, info: ValidationInfo):
        value = _only_accepted(value, info, "pairs", "generate")
        return _generated(value) if info.field_name == "count" else value

    @model_validator(mode="after")
    def _one_source(self):
        if (self.path is None) == (self.generate is None):
            raise ValueError("give exactly one of path or generate")
        if self.lengths[0] > self.lengths[1] or self.lengths[0] < 1:
            raise ValueError("lengths is [shortest, longest], both at least 1")
        return self


DataSpec = Annotated[
    Union[  # noqa: UP007
        BuiltinData,
        NpzData,
        CsvData,
        ParquetData,
        HFDatasetData,
        ImageFolderData,
        TextData,
        PairsData,
    ],
    Field(discriminator="type"),
]
DATA_KINDS = {
    "builtin": BuiltinData,
    "npz": NpzData,
    "csv": CsvData,
    "parquet": ParquetData,
    "datasets": HFDatasetData,
    "images": ImageFolderData,
    "text": TextData,
    "pairs": PairsData,
}
