"""Generated digit-string pairs for seq2seq: reverse, copy, sort, and addition.

Sources are random digit strings of a length drawn from `lengths` (addition: two numbers of that
many digits at most, "123+4567" -> "4690"). Lengths in `hold_out_lengths` are never drawn, so a
model can be tested on lengths it never saw. The sources are distinct; deterministic for a seed.
"""

from __future__ import annotations

import numpy as np

from ..diagnostics import DataProblem
from .registry import register

TARGETS = {
    "reverse": lambda digits: digits[::-1],
    "copy": lambda digits: digits,
    "sort": lambda digits: "".join(sorted(digits)),
}


def generate_pairs(
    name: str, count: int, seed: int, lengths=(5, 12), hold_out=()
) -> tuple[list[str], list[str]]:
    """`count` distinct (source, target) pairs; lengths in `hold_out` are never drawn."""
    rng = np.random.default_rng(seed)
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
            source, target = digits, TARGETS[name](digits)
        if source not in seen:
            seen.add(source)
            sources.append(source)
            targets.append(target)
    return sources, targets


def _register(name: str, description: str) -> None:
    @register(name, "pairs", description)
    def make(seed: int, count: int = 4000, lengths=(5, 12), hold_out_lengths=()):
        return generate_pairs(name, count, seed, lengths, hold_out_lengths)


_register("reverse", "digit strings and the same digits reversed")
_register("copy", "digit strings copied unchanged")
_register("sort", "digit strings and their digits sorted")
_register("addition", 'sums written as characters, "123+45" -> "168"')
