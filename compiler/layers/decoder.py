"""decoder: one-to-many; unrolls a recurrent cell for N steps from a vector, feeding back its outputs."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, PositiveInt, field_validator

from .base import Layer, ShapeError, SizeOrVocab, args, fmt_shape, need_int

GATES = {"rnn": 1, "gru": 3, "lstm": 4}


class Decoder(Layer):
    """(batch, features) -> (batch, steps, out_features): a sequence generated from one vector.

    The vector sets the first state; each step reads the previous step's output (its argmax,
    embedded, for tokens; the values themselves otherwise). In training, with probability
    `teacher_forcing` per step, it reads the true previous target instead.
    """

    type: Literal["decoder"]
    cell: Literal["rnn", "gru", "lstm"] = Field("gru", description="The recurrent cell.")
    hidden_size: PositiveInt = Field(description="State size.")
    steps: PositiveInt = Field(description="How many steps to generate.")
    out_features: SizeOrVocab = Field(
        description="Outputs per step: classes (tokens) or values; `vocab` for text data."
    )
    feedback: Literal["tokens", "values"] = Field(
        "tokens", description="tokens: feed back the argmax, embedded; values: the outputs."
    )
    embedding_dim: PositiveInt = Field(16, description="Size of a fed-back token's vector.")
    teacher_forcing: float = Field(
        0.5, ge=0.0, le=1.0, description="Chance per step of reading the true previous target."
    )
    bidirectional: bool = Field(False, description="Always false: see the error.")

    takes_targets: ClassVar[bool] = True
    doc_example: ClassVar[str] = "- {type: decoder, hidden_size: 32, steps: 6, out_features: 28}"
    doc_shapes: ClassVar[str] = "(F) -> (steps, out_features)"

    @field_validator("bidirectional")
    @classmethod
    def _forward_only(cls, v):
        if v:
            raise ValueError(
                "a decoder generates each step from the ones before it, so it cannot also run "
                "right to left; make the encoder bidirectional instead"
            )
        return v

    def _feed(self) -> int:
        return self.embedding_dim if self.feedback == "tokens" else self.out_features

    def infer(self, shapes):
        if len(shapes[0]) != 1:
            raise ShapeError(
                f"decoder unrolls from a vector (batch, features), got {fmt_shape(shapes[0])}",
                hint="give it an encoder's final state (output: last or state) or flatten first",
            )
        need_int(shapes[0][0], "decoder's input features")
        return (self.steps, self.out_features)

    def param_count(self, shapes):
        h, v, feed = self.hidden_size, self.out_features, self._feed()
        states = 2 if self.cell == "lstm" else 1
        bridge = shapes[0][0] * h * states + h * states
        embed = v * self.embedding_dim if self.feedback == "tokens" else 0
        cell = GATES[self.cell] * h * (feed + h + 2)
        return bridge + embed + feed + cell + h * v + v

    def flops(self, shapes, out):
        """The bridge once, then every step: the cell's gates and the output layer."""
        h, v, feed = self.hidden_size, self.out_features, self._feed()
        states = 2 if self.cell == "lstm" else 1
        step = GATES[self.cell] * h * (2 * (feed + h) + 2) + (2 * h + 1) * v
        return 2 * shapes[0][0] * h * states + self.steps * step

    def helpers(self):
        return ("Decoder",)

    def module(self, shapes):
        return (
            "Decoder("
            + args(
                shapes[0][0],
                self.hidden_size,
                self.out_features,
                self.steps,
                cell=self.cell,
                tokens=self.feedback == "tokens",
                embedding_dim=self.embedding_dim,
                teacher_forcing=self.teacher_forcing,
            )
            + ")"
        )

    def call(self, module, args, shapes):
        return f"{module}({args[0]}, targets)"
