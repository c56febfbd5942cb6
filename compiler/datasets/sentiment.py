"""A generated sentiment set: short reviews whose label depends on word order.

A review is one clause, or two joined by "but"; a clause is a subject, a verb, optional
intensifiers, an optional "not", and an adjective. A clause is positive when its adjective is
positive and not negated. The label is the polarity of the *last* clause ("the plot was dull but
the acting was superb" is positive), so a bag of words cannot solve it: a model has to read the
order, which is what a recurrent classifier is for. Deterministic for a seed.
"""

from __future__ import annotations

import numpy as np

from .registry import register

SUBJECTS = ["the movie", "this film", "the plot", "the acting", "the ending", "the music",
            "the story", "the cast", "the script", "the camera work"]  # fmt: skip
VERBS = ["was", "is", "felt", "seemed"]
INTENSIFIERS = ["very", "really", "quite", "truly", "rather"]
POSITIVE = ["good", "great", "superb", "moving", "clever", "fun", "lovely", "brilliant"]
NEGATIVE = ["bad", "dull", "awful", "boring", "weak", "clumsy", "tedious", "poor"]
LABELS = ["negative", "positive"]  # class 0, class 1


def _clause(rng: np.random.Generator) -> tuple[str, bool]:
    positive = bool(rng.random() < 0.5)
    negated = bool(rng.random() < 0.3)
    words = [SUBJECTS[rng.integers(len(SUBJECTS))], VERBS[rng.integers(len(VERBS))]]
    if negated:
        words.append("not")
    words += [INTENSIFIERS[rng.integers(len(INTENSIFIERS))] for _ in range(rng.integers(0, 3))]
    pool = POSITIVE if positive else NEGATIVE
    words.append(pool[rng.integers(len(pool))])
    return " ".join(words), positive != negated


def generate(count: int, seed: int) -> tuple[list[str], list[str]]:
    """(texts, labels 'negative'/'positive')."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for _ in range(count):
        text, positive = _clause(rng)
        if rng.random() < 0.5:
            second, positive = _clause(rng)
            text = f"{text} but {second}"
        texts.append(text)
        labels.append("positive" if positive else "negative")
    return texts, labels


@register("sentiment", "text", "reviews whose label needs word order")
def make(seed: int, count: int = 2000):
    return (*generate(count, seed), list(LABELS))
