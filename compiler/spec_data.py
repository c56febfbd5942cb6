"""The `data:` section of a spec: where training examples come from and how they are split."""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, model_validator

from .layers.base import Pair


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


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
    name: Literal["digits", "iris", "wine", "breast_cancer", "xor", "road", "adding"] = Field(
        description="Offline dataset: scikit-learn's bundled sets, xor, road (generated road images) or adding (the adding problem's sequences)."
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


DataSpec = Annotated[
    Union[BuiltinData, NpzData, CsvData, ImageFolderData],  # noqa: UP007
    Field(discriminator="type"),
]
DATA_KINDS = {"builtin": BuiltinData, "npz": NpzData, "csv": CsvData, "images": ImageFolderData}
