"""Source/target pairs for task: seq2seq (numpy only, no torch).

Pairs come from a tab-separated file (one `source<TAB>target` per line) or are generated:
- reverse, copy, sort: digit strings and the same digits reversed, unchanged, or sorted;
- addition: "123+4567" -> "4690";
- shapes: 24x24 grayscale pictures of one shape and their captions ("big circle on the left").

Both sides are tokenized (characters or words) with their own vocabulary, built from the train
split only (the split train.py makes from the same seed). The decoder reads `target_in`
(`<bos> y1 .. yn`, padded with `<pad>`) and is scored on `target_out` (`y1 .. yn <eos>`,
padding as -100, which no loss or metric counts).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from specc.runtime.contracts import BOS, EOS, PAD, UNK
from specc.runtime.text import Vocab, pad_ids, tokenize

from .diagnostics import DataProblem
from .text import IGNORE, build_vocab, split_indices

GENERATED = ("reverse", "copy", "sort", "addition", "shapes")
IMAGE_SIZE = 24


@dataclass
class PairSet:
    source: np.ndarray  # (N, S) int64 token ids, or (N, 1, H, W) float32 images
    source_lengths: np.ndarray | None  # (N,) for token sources
    target_in: np.ndarray  # (N, T) <bos> y1..yn, then <pad>
    target_out: np.ndarray  # (N, T) y1..yn <eos>, then -100
    source_vocab: Vocab | None  # None for an image source
    target_vocab: Vocab
    longest_source: int
    longest_target: int  # tokens, without <bos>/<eos>


def generate_pairs(
    name: str, count: int, seed: int, lengths=(5, 12), hold_out=()
) -> tuple[list, list[str]]:
    """`count` distinct (source, target) pairs; lengths in `hold_out` are never drawn."""
    rng = np.random.default_rng(seed)
    if name == "shapes":
        return _shapes(count, rng)
    allowed = [n for n in range(lengths[0], lengths[1] + 1) if n not in set(hold_out)]
    if not allowed:
        raise DataProblem("hold_out_lengths", "every length in the range is held out")
    seen, sources, targets = set(), [], []
    for _ in range(count * 20):
        if len(sources) == count:
            break
        if name == "addition":
            a, b = (int(rng.integers(0, 10 ** int(rng.choice(allowed)))) for _ in range(2))
            source, target = f"{a}+{b}", str(a + b)
        else:
            digits = "".join(map(str, rng.integers(0, 10, int(rng.choice(allowed)))))
            target = {"reverse": digits[::-1], "copy": digits, "sort": "".join(sorted(digits))}[
                name
            ]
            source = digits
        if source not in seen:
            seen.add(source)
            sources.append(source)
            targets.append(target)
    return sources, targets


SHAPES, SIZES, PLACES = (
    ("circle", "square", "triangle", "cross"),
    ("small", "big"),
    (
        "left",
        "right",
        "top",
        "bottom",
    ),
)


def _shapes(count: int, rng) -> tuple[np.ndarray, list[str]]:
    """Pictures of one shape with a caption naming its size, kind and place."""
    n = IMAGE_SIZE
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32)
    centres = {"left": (12, 6), "right": (12, 17), "top": (6, 12), "bottom": (17, 12)}
    images, captions = np.zeros((count, 1, n, n), dtype=np.float32), []
    for k in range(count):
        shape, size, place = rng.choice(SHAPES), rng.choice(SIZES), rng.choice(PLACES)
        cy, cx = np.array(centres[place]) + rng.uniform(-1.0, 1.0, 2)
        r = (2.2 if size == "small" else 4.6) * rng.uniform(0.9, 1.1)
        dy, dx = yy - cy, xx - cx
        if shape == "circle":
            mask = dy**2 + dx**2 <= r**2
        elif shape == "square":
            mask = (abs(dy) <= r * 0.85) & (abs(dx) <= r * 0.85)
        elif shape == "triangle":
            mask = (dy <= r * 0.8) & (dy >= -r) & (abs(dx) <= (dy + r) * 0.6)
        else:
            mask = ((abs(dy) <= r) & (abs(dx) <= r * 0.3)) | ((abs(dx) <= r) & (abs(dy) <= r * 0.3))
        images[k, 0] = mask + rng.normal(0.0, 0.1, (n, n))
        captions.append(f"{size} {shape} on the {place}")
    return images, captions


def load(data, base: Path, seed: int) -> PairSet:
    """The `data: {type: pairs}` section -> ids; raises DataProblem naming the field at fault."""
    if data.generate is not None:
        sources, targets = generate_pairs(
            data.generate, data.count or 4000, seed, data.lengths, data.hold_out_lengths
        )
    else:
        sources, targets = read_tsv(base / data.path)
    level = "word" if data.generate == "shapes" else data.level
    image = isinstance(sources, np.ndarray)
    split = split_indices(len(targets), seed, data.val_split, data.test_split)
    tgt = [tokenize(t, level, data.lowercase) for t in targets]
    if any(not t for t in tgt):
        raise DataProblem(
            "path", f"target {next(i for i, t in enumerate(tgt) if not t) + 1} is empty"
        )
    target_vocab = build_vocab((tgt[i] for i in split["train"]), level, data.lowercase)
    target_in, target_out = encode_targets(tgt, target_vocab)
    if image:
        return PairSet(
            sources, None, target_in, target_out, None, target_vocab, IMAGE_SIZE, max(map(len, tgt))
        )
    src = [tokenize(s, data.level, data.lowercase) for s in sources]
    if any(not s for s in src):
        raise DataProblem(
            "path", f"source {next(i for i, s in enumerate(src) if not s) + 1} is empty"
        )
    source_vocab = build_vocab((src[i] for i in split["train"]), data.level, data.lowercase)
    index = source_vocab.index()
    ids, lengths = pad_ids([[index.get(t, UNK) for t in s] for s in src])
    return PairSet(
        ids,
        lengths,
        target_in,
        target_out,
        source_vocab,
        target_vocab,
        ids.shape[1],
        max(map(len, tgt)),
    )


def encode_targets(streams: list[list[str]], vocab: Vocab) -> tuple[np.ndarray, np.ndarray]:
    """(target_in, target_out): `<bos> y` padded with <pad>, `y <eos>` padded with -100."""
    index = vocab.index()
    width = max(map(len, streams)) + 1
    target_in = np.full((len(streams), width), PAD, dtype=np.int64)
    target_out = np.full((len(streams), width), IGNORE, dtype=np.int64)
    for i, s in enumerate(streams):
        ids = [index.get(t, UNK) for t in s]
        target_in[i, : len(ids) + 1] = [BOS, *ids]
        target_out[i, : len(ids) + 1] = [*ids, EOS]
    return target_in, target_out


def read_tsv(path: Path) -> tuple[list[str], list[str]]:
    """`source<TAB>target` per line; blank lines skipped."""
    if not path.is_file():
        raise DataProblem("path", f"pairs file not found: {path}")
    sources, targets = [], []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DataProblem("path", f"cannot read {path.name} as UTF-8 text: {e}") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 2:
            raise DataProblem(
                "path",
                f"{path.name}:{number}: expected 'source<TAB>target', got {len(parts)} field(s)",
            )
        sources.append(parts[0])
        targets.append(parts[1])
    if not sources:
        raise DataProblem("path", f"{path.name} holds no pairs")
    return sources, targets
