"""Tokens: how specc turns text into ids and back. Shared by the compiler (which builds the
vocabulary) and the runtime (which reads it from a model file), so both split text alike."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import numpy as np

from .contracts import PAD, SPECIAL_TOKENS, UNK

WORD = re.compile(r"\w+|[^\w\s]")


def tokenize(text: str, level: str, lowercase: bool = False) -> list[str]:
    if lowercase:
        text = text.lower()
    return list(text) if level == "char" else WORD.findall(text)


def detokenize(tokens: list[str], level: str) -> str:
    """Characters join as they are; words join with spaces, punctuation sticks to the word before."""
    if level == "char":
        return "".join(tokens)
    out = ""
    for tok in tokens:
        glue = not out or (not tok[0].isalnum() and tok[0] not in "([{\"'")
        out += tok if glue else " " + tok
    return out


def pad_ids(rows: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ids right-padded with <pad> into one (N, longest) int64 array, and their lengths."""
    ids = np.full((len(rows), max(map(len, rows))), PAD, dtype=np.int64)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = row
    return ids, np.array([len(row) for row in rows], dtype=np.int64)


@dataclass(frozen=True)
class Vocab:
    """Tokens by id; ids 0-3 are <pad>, <unk>, <bos>, <eos>."""

    tokens: tuple[str, ...]
    level: str
    lowercase: bool

    def __len__(self) -> int:
        return len(self.tokens)

    def index(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(self.tokens)}

    def split(self, text: str) -> list[str]:
        return tokenize(text, self.level, self.lowercase)

    def unknown(self, tokens: list[str]) -> list[str]:
        """The tokens a model cannot read as given: not in the vocabulary, or a special token."""
        index = self.index()
        return [t for t in tokens if t not in index or t in SPECIAL_TOKENS]

    def encode(self, text: str) -> list[int]:
        """Token ids; a token not in the vocabulary becomes <unk>."""
        index = self.index()
        return [index.get(t, UNK) for t in self.split(text)]

    def decode(self, ids) -> str:
        return detokenize([self.tokens[i] for i in ids if i >= len(SPECIAL_TOKENS)], self.level)

    def to_json(self) -> str:
        return json.dumps(
            {"tokens": list(self.tokens), "level": self.level, "lowercase": self.lowercase},
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, text: str) -> Vocab:
        data = json.loads(text)
        return cls(tuple(data["tokens"]), data["level"], bool(data["lowercase"]))
