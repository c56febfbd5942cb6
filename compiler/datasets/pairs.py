"""Generated digit-string pairs for seq2seq: reverse, copy, sort, and addition.

Sources are random digit strings of a length drawn from `lengths` (addition: two numbers of that
many digits at most, "123+4567" -> "4690"). Lengths in `hold_out_lengths` are never drawn, so a
model can be tested on lengths it never saw. The sources are distinct; deterministic for a seed.
"""

from __future__ import annotations

import numpy as np

from .. import limits
from ..diagnostics import DataProblem
from .registry import register

LONGEST_NUMBER = 18  # addition's numbers and their sum fit int64

TARGETS = {
    "reverse": lambda digits: digits[::-1],
    "copy": lambda digits: digits,
    "sort": lambda digits: "".join(sorted(digits)),
}


def generate_pairs(
    name: str, count: int, seed: int, lengths=(5, 12), hold_out=()
) -> tuple[list[str], list[str]]:
    """`count` distinct (source, target) pairs; lengths in `hold_out` are never drawn."""
    _within_limits(name, count, lengths)
    rng = np.random.default_rng(seed)
    held = set(hold_out)
    allowed = [n for n in range(lengths[0], lengths[1] + 1) if n not in held]
    if not allowed:
        raise DataProblem("hold_out_lengths", "every length in the range is held out")
    distinct = _distinct(name, allowed)
    if count > distinct // 2:  # else drawing distinct sources takes ever longer, and falls short
        raise DataProblem(
            "count",
            f"lengths {list(lengths)} give {distinct:,} different sources, too few for "
            f"{count:,} distinct ones",
            "widen lengths, or lower count",
        )
    seen, sources, targets = set(), [], []

    # allowed[rng.integers(n)] draws exactly what rng.choice(allowed) draws, eight times faster
    def length() -> int:
        return allowed[int(rng.integers(0, len(allowed)))]

    for _ in range(count * 20):
        if len(sources) == count:
            break
        if name == "addition":
            a, b = (int(rng.integers(0, 10 ** length())) for _ in range(2))
            source, target = f"{a}+{b}", str(a + b)
        else:
            digits = (rng.integers(0, 10, length()).astype(np.uint8) + 48).tobytes().decode()
            source, target = digits, TARGETS[name](digits)
        if source not in seen:
            seen.add(source)
            sources.append(source)
            targets.append(target)
    return sources, targets


def _within_limits(name: str, count: int, lengths) -> None:
    """Refuse, before drawing one, data larger than the limit or numbers that overflow."""
    longest = lengths[1]
    if name == "addition" and longest > LONGEST_NUMBER:
        raise DataProblem(
            "lengths", f"addition adds numbers of at most {LONGEST_NUMBER} digits, not {longest}"
        )
    per_pair = (2 * longest + 1 if name == "addition" else longest) + longest + 1
    most = limits.GENERATED_VALUES.value
    if count * per_pair > most:
        raise DataProblem(
            "lengths" if per_pair > 100 else "count",  # long strings, or many short ones
            limits.GENERATED_VALUES.exceeded(
                f"{count:,} pairs of up to {per_pair:,} characters make {count * per_pair:,} "
                "values to generate at compile time"
            ),
        )


def _distinct(name: str, allowed: list[int]) -> int:
    """How many different sources the allowed lengths can give (counted up to 10**12)."""
    if name == "addition":  # two numbers of up to the longest length
        return min(10 ** (2 * max(allowed)), 10**12)
    return min(sum(10 ** min(n, 12) for n in allowed[:12]), 10**12)


def _register(name: str, description: str) -> None:
    @register(name, "pairs", description)
    def make(seed: int, count: int = 4000, lengths=(5, 12), hold_out_lengths=()):
        return generate_pairs(name, count, seed, lengths, hold_out_lengths)


_register("reverse", "digit strings and the same digits reversed")
_register("copy", "digit strings copied unchanged")
_register("sort", "digit strings and their digits sorted")
_register("addition", 'sums written as characters, "123+45" -> "168"')
