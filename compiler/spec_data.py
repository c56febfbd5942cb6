"""The `data:` section of a spec: where training examples come from and how they are split."""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, model_validator

from .layers.base import Pair


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


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

    @model_validator(mode="after")
    def _room_to_train(self):
        if self.val_split + self.test_split > 0.9:
            raise ValueError("val_split + test_split leave less than 10% to train on")
        return self


class BuiltinData(DataBase):
    type: Literal["builtin"]
    name: Literal["digits", "iris", "wine", "breast_cancer", "xor", "road", "adding", "one_hot"] = (
        Field(
            description="Offline dataset: scikit-learn's bundled sets, xor, road (generated road images), "
            "adding (the adding problem's sequences) or one_hot (the 8 one-hot patterns of the 8-3-8 encoder)."
        )
    )
    resize: Pair | None = Field(
        None, description="Resize images to [height, width] (digits: 8x8 originals)."
    )
    count: PositiveInt | None = Field(
        None, description="Examples to generate (road: default 2000; adding: 3000)."
    )
    length: PositiveInt | None = Field(
        None, ge=2, description="Sequence length (adding; default 30)."
    )

    @model_validator(mode="after")
    def _only_generated(self):
        if self.count is not None and self.name not in ("road", "adding"):
            raise ValueError(f"count applies to generated datasets (road, adding), not {self.name}")
        if self.length is not None and self.name != "adding":
            raise ValueError(f"length applies to the adding problem, not {self.name}")
        return self


class NpzData(DataBase):
    type: Literal["npz"]
    path: str = Field(description="Path to a .npz file, relative to the spec.")
    x: str = Field("x", description="Array of inputs.")
    y: str = Field("y", description="Array of targets.")


class CsvData(DataBase):
    type: Literal["csv"]
    path: str = Field(description="Path to a .csv file with a header row, relative to the spec.")
    label: str = Field(description="Column holding the target.")
    features: list[str] | None = Field(
        None, description="Input columns (default: all but the label and `exclude`)."
    )
    exclude: list[str] = Field(default_factory=list, description="Columns to leave out.")
    delimiter: str = Field(",", min_length=1, max_length=1)


class ImageFolderData(DataBase):
    type: Literal["images"]
    path: str = Field(
        description="Folder with one sub-folder per class (its name is the label), relative to the spec."
    )
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
    generate: Literal["sentiment"] | None = Field(
        None,
        description="A generated labelled set: sentiment (reviews whose label needs word order).",
    )
    count: PositiveInt | None = Field(None, description="Examples to generate (default 2000).")
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
    generate: Literal["reverse", "copy", "sort", "addition", "shapes"] | None = Field(
        None,
        description="A generated set: digit strings reversed, copied or sorted; sums written "
        "as characters (addition); or pictures of shapes and their captions (shapes).",
    )
    count: PositiveInt | None = Field(None, description="Pairs to generate (default 4000).")
    lengths: Pair = Field(
        (5, 12), description="Generated strings: the shortest and longest source length."
    )
    hold_out_lengths: list[PositiveInt] = Field(
        default_factory=list,
        description="Generated strings: lengths never trained on (test them afterwards).",
    )
    level: Literal["char", "word"] = Field("char", description="Tokens: characters or words.")
    lowercase: bool = Field(False, description="Lower-case both sides before tokenizing.")

    @model_validator(mode="after")
    def _one_source(self):
        if (self.path is None) == (self.generate is None):
            raise ValueError("give exactly one of path or generate")
        if self.lengths[0] > self.lengths[1] or self.lengths[0] < 1:
            raise ValueError("lengths is [shortest, longest], both at least 1")
        return self


DataSpec = Annotated[
    Union[BuiltinData, NpzData, CsvData, ImageFolderData, TextData, PairsData],  # noqa: UP007
    Field(discriminator="type"),
]
DATA_KINDS = {
    "builtin": BuiltinData,
    "npz": NpzData,
    "csv": CsvData,
    "images": ImageFolderData,
    "text": TextData,
    "pairs": PairsData,
}
