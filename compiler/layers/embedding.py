"""embedding: token ids -> learned vectors (a lookup table)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, PositiveInt

from .base import Layer, SizeOrVocab, args, opt


class Embedding(Layer):
    """Maps int64 ids in [0, num_embeddings) to vectors; (batch, time) -> (batch, time, dim)."""

    type: Literal["embedding"]
    num_embeddings: SizeOrVocab = Field(
        description="Vocabulary size; `vocab`: the size of the text data's vocabulary."
    )
    embedding_dim: PositiveInt = Field(description="Size of each vector.")
    padding_idx: int | None = Field(None, ge=0, description="An id whose vector stays zero.")

    doc_example: ClassVar[str] = "- {type: embedding, num_embeddings: 100, embedding_dim: 16}"
    doc_shapes: ClassVar[str] = "int64 ids (T) -> (T, embedding_dim)"
    cost_per_element: ClassVar[float] = 0  # moves or looks up values, computes nothing
    per_step: ClassVar[bool] = True

    def infer(self, shapes):
        return (*shapes[0], self.embedding_dim)

    def param_count(self, shapes):
        return self.num_embeddings * self.embedding_dim

    def module(self, shapes):
        return (
            "nn.Embedding("
            + args(self.num_embeddings, self.embedding_dim, padding_idx=opt(self.padding_idx, None))
            + ")"
        )
