"""Text data: tokenizers, the vocabulary, and text turned into token ids (numpy only, no torch).

Two shapes of text data:
- a corpus (a .txt file, or `text:` inline) for a language model: one token stream,
  `<bos> ... <eos>`, cut into windows of `seq_len + 1` tokens; the input is a window's first
  `seq_len` tokens and the target the same window shifted by one (next-token prediction);
- labelled texts (.jsonl or .csv with a text and a label column, or a generated set) for
  sequence classification: token ids right-padded with `<pad>`, plus each text's length.

The vocabulary comes from the training split only (the split train.py makes from the same
seed): a token seen only in validation or test maps to `<unk>`, as it would for a user's new
text. Ids 0-3 are `<pad>`, `<unk>`, `<bos>`, `<eos>`; the rest follow by frequency.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from specc.runtime.contracts import BOS, EOS, SPECIAL_TOKENS, UNK
from specc.runtime.text import Vocab, pad_ids, tokenize

from . import datasets
from .diagnostics import DataProblem

IGNORE = -100  # a target position that is padding: no loss, no metric


def build_vocab(streams, level: str, lowercase: bool, min_count: int = 1) -> Vocab:
    """Specials first, then the tokens seen at least `min_count` times, by frequency."""
    counts = Counter()
    for stream in streams:  # update() counts a list in C: twice as fast as a generator
        counts.update(stream)
    for special in SPECIAL_TOKENS:
        counts.pop(special, None)
    kept = sorted((t for t, c in counts.items() if c >= min_count), key=lambda t: (-counts[t], t))
    return Vocab(SPECIAL_TOKENS + tuple(kept), level, lowercase)


def split_indices(n: int, seed: int, val_split: float, test_split: float) -> dict[str, np.ndarray]:
    """The split train.py makes (same seed, same arithmetic), so the vocabulary sees train only."""
    order = np.random.default_rng(seed).permutation(n)
    n_test, n_val = round(n * test_split), round(n * val_split)
    test, val, train = order[:n_test], order[n_test : n_test + n_val], order[n_test + n_val :]
    return {"train": np.sort(train), "val": np.sort(val if n_val else train), "test": np.sort(test)}


@dataclass
class TextSet:
    x: np.ndarray  # (N, T) int64 token ids
    y: np.ndarray  # (N, T) next-token ids (corpus) or (N,) class indices
    lengths: np.ndarray | None  # (N,) real lengths of padded texts
    labels: list[str] | None
    vocab: Vocab
    unigram_entropy: float | None = None  # nats per target token over the train split (corpus)


def load(data, base: Path, seed: int, labels: list[str] | None = None) -> TextSet:
    """The `data: {type: text}` section -> token ids; raises DataProblem naming the field at fault."""
    if data.generate is not None:
        texts, raw, classes = datasets.get(data.generate, "text").from_section(data, seed)
        return _labelled(texts, raw, data, seed, labels or classes)
    if data.text is not None:
        return _corpus(data.text, data, seed, "text")
    path = base / data.path
    if path.is_dir():  # a folder: its .txt and .md files, in name order, as one corpus
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in (".txt", ".md"))
        if not files:
            raise DataProblem("path", f"{path} holds no .txt or .md files")
        try:
            corpus = "\n\n".join(p.read_text(encoding="utf-8") for p in files)
        except (OSError, UnicodeDecodeError) as e:
            raise DataProblem("path", f"cannot read the corpus in {path}: {e}") from None
        return _corpus(corpus, data, seed, "path")
    if not path.is_file():
        raise DataProblem("path", f"text file not found: {path}")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".csv", ".tsv"):
        texts, raw = (_read_jsonl if suffix == ".jsonl" else _read_table)(path, data)
        return _labelled(texts, raw, data, seed, labels)
    try:
        corpus = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DataProblem("path", f"cannot read {path.name} as UTF-8 text: {e}") from None
    return _corpus(corpus, data, seed, "path")


def _corpus(corpus: str, data, seed: int, field: str) -> TextSet:
    tokens = tokenize(corpus, data.level, data.lowercase)
    if not tokens:
        raise DataProblem(field, "the corpus is empty: there is no text to learn from")
    stream = [SPECIAL_TOKENS[BOS], *tokens, SPECIAL_TOKENS[EOS]]
    seq_len = data.seq_len
    count = (len(stream) - 1) // seq_len
    if count < 1:
        raise DataProblem(
            "seq_len",
            f"the corpus has {len(tokens)} {data.level} tokens, too few for one window of seq_len {seq_len}",
            f"set seq_len to at most {len(stream) - 1}",
        )
    windows = [stream[i * seq_len : i * seq_len + seq_len + 1] for i in range(count)]
    split = split_indices(count, seed, data.val_split, data.test_split)
    if not len(split["train"]):
        raise DataProblem(
            "seq_len",
            f"the corpus makes {count} window(s) of seq_len {seq_len}, and the validation and "
            "test splits take them all",
            "lower seq_len, or give a longer corpus",
        )
    vocab = build_vocab(
        (windows[i] for i in split["train"]), data.level, data.lowercase, data.min_count
    )
    index = vocab.index()
    ids = np.array([[index.get(t, UNK) for t in w] for w in windows], dtype=np.int64)
    targets = ids[split["train"], 1:].ravel()
    p = np.bincount(targets, minlength=len(vocab)) / len(targets)
    entropy = float(-(p[p > 0] * np.log(p[p > 0])).sum())
    return TextSet(ids[:, :-1], ids[:, 1:], None, None, vocab, entropy)


def _labelled(texts: list[str], raw: list[str], data, seed: int, labels) -> TextSet:
    if not texts:
        raise DataProblem("path", "the data holds no texts")
    streams = [tokenize(t, data.level, data.lowercase)[: data.max_len] for t in texts]
    empty = [i for i, s in enumerate(streams) if not s]
    if empty:
        raise DataProblem("path", f"text {empty[0] + 1} is empty (every example needs a token)")
    split = split_indices(len(texts), seed, data.val_split, data.test_split)
    vocab = build_vocab(
        (streams[i] for i in split["train"]), data.level, data.lowercase, data.min_count
    )
    index = vocab.index()
    x, lengths = pad_ids([[index.get(t, UNK) for t in s] for s in streams])
    if labels is None:
        labels = sorted(set(raw))
    known = {v: i for i, v in enumerate(labels)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise DataProblem(
            "label", f"label '{unknown[0]}' is not one of the model's labels {labels}"
        )
    y = np.array([known[v] for v in raw], dtype=np.int64)
    return TextSet(x, y, lengths, list(labels), vocab)


def _read_jsonl(path: Path, data) -> tuple[list[str], list[str]]:
    texts, raw = [], []
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as e:
                raise DataProblem(
                    "path", f"{path.name}:{line_no}: not a JSON object ({e})"
                ) from None
            for field, key in (("text_field", data.text_field), ("label_field", data.label_field)):
                if not isinstance(row, dict) or key not in row:
                    raise DataProblem(field, f"{path.name}:{line_no}: no key '{key}'")
            texts.append(str(row[data.text_field]))
            raw.append(str(row[data.label_field]))
    return texts, raw


def _read_table(path: Path, data) -> tuple[list[str], list[str]]:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f, delimiter=delimiter))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataProblem("path", f"cannot read {path.name}: {e}") from None
    if not rows:
        raise DataProblem("path", f"{path.name} has no data rows")
    for field, key in (("text_field", data.text_field), ("label_field", data.label_field)):
        if key not in rows[0]:
            raise DataProblem(
                field, f"{path.name} has no column '{key}'", f"columns: {', '.join(rows[0])}"
            )
    return [r[data.text_field] for r in rows], [r[data.label_field] for r in rows]
