"""The `cells:` section: custom recurrent cells written as equations (see compiler/cells.py)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, StringConstraints, field_validator

Identifier = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=64)]
Size = Literal["input", "hidden"] | PositiveInt


class CellSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    input: Identifier = Field("x", description="Name of the input vector in the equations.")
    input_size: Literal["input", "hidden"] = Field(
        "input",
        description="hidden: the input has the hidden size (e.g. MUT1 adds x to the state).",
    )
    state: dict[Identifier, Size] = Field(
        min_length=1, description="State vectors and their sizes (carried from step to step)."
    )
    params: dict[Identifier, list[Size]] = Field(
        default_factory=dict,
        description="Learned parameters: [rows, cols] matrices or [size] vectors.",
    )
    equations: list[str] = Field(min_length=1, description="`name = expression`, in order.")
    output: Identifier | None = Field(
        None, description="What the cell outputs (default: the first state)."
    )

    @field_validator("params")
    @classmethod
    def _dims(cls, v):
        for name, dims in v.items():
            if len(dims) not in (1, 2):
                raise ValueError(f"parameter '{name}' must have 1 or 2 dims, it has {len(dims)}")
        return v
