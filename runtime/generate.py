"""Text generation from a language model's step graph (step.onnx), with numpy and ONNX Runtime.

The prompt goes through the graph once; then each new token is one call that carries the
recurrent state forward, so the prefix is never recomputed. The vocabulary and the state
layout come from the file's metadata, so a step.onnx is all an application needs.

    lm = specc.runtime.LanguageModel("runs/char_lm")
    print(lm.generate("The ", max_tokens=200, temperature=0.8, top_k=20, seed=0))
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .contracts import BOS, EOS, PAD, SPECIAL_TOKENS, UNK, Meta
from .errors import InputError, ModelLoadError, PositionLimitWarning, RunError
from .session import Model
from .text import Vocab

NEVER = (PAD, UNK, BOS)  # never generated

# Why decoding stopped: the model wrote <eos>; the caller's cap on tokens (max_tokens, a
# seq2seq max_len) was reached; or the model cannot represent another position.
STOPS = ("eos", "max_tokens", "max_positions")


@dataclass(frozen=True)
class Decoded:
    """One decoded sequence: its text, the token ids written, and why decoding stopped."""

    text: str
    tokens: list
    stop: str  # one of STOPS


def max_positions(meta: dict) -> int | None:
    """How many positions a step graph can represent (Meta.MAX_POSITIONS); None: unbounded."""
    value = meta.get(Meta.MAX_POSITIONS)
    return int(value) if value not in (None, "", "null") else None


def past_the_table(error: RunError) -> bool:
    """A step that failed by indexing past a table (ONNX Runtime's Gather bounds check): what
    a learned position table does one position beyond its rows, in a graph whose metadata does
    not record the limit (exported before Meta.MAX_POSITIONS)."""
    text = str(error).lower()
    return "out of" in text and "bound" in text


def warn_positions(what: str, limit: int, written: int) -> None:
    warnings.warn(
        f"{what} stopped after {written} token(s) without <eos>: the model represents "
        f"{limit} positions and cannot write further",
        PositionLimitWarning,
        stacklevel=3,
    )


def pick(
    logits: np.ndarray,
    temperature: float,
    top_k: int | None,
    top_p: float | None,
    rng: np.random.Generator,
) -> np.ndarray:
    """Next token per row of (batch, vocab) logits: greedy at temperature 0, else sampled from the
    softmax at that temperature, cut to the k most likely (top_k) and to the smallest set holding
    probability top_p (nucleus sampling, Holtzman et al. 2020)."""
    logits = logits.astype(np.float64)
    logits[:, list(NEVER)] = -np.inf
    if temperature == 0:
        return logits.argmax(axis=1)
    logits = logits / temperature
    if top_k is not None and top_k < logits.shape[1]:
        kth = np.sort(logits, axis=1)[:, -top_k][:, None]
        logits = np.where(logits < kth, -np.inf, logits)
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    if top_p is not None and top_p < 1.0:
        order = np.argsort(-probs, axis=1)
        sorted_p = np.take_along_axis(probs, order, axis=1)
        before = np.cumsum(sorted_p, axis=1) - sorted_p  # mass of the tokens ranked above
        drop = np.zeros_like(probs, dtype=bool)
        np.put_along_axis(drop, order, before >= top_p, axis=1)
        probs = np.where(drop, 0.0, probs)
        probs /= probs.sum(axis=1, keepdims=True)
    cumulative = probs.cumsum(axis=1)
    draws = rng.random((len(probs), 1)) * cumulative[:, -1:]
    return (cumulative < draws).sum(axis=1).clip(0, probs.shape[1] - 1)


class LanguageModel:
    """A language model's step graph: `generate` text, or `step` through tokens yourself."""

    def __init__(self, path: str | Path, device: str = "auto", threads: int | None = None):
        p = Path(path)
        if p.is_dir():
            p = p / "step.onnx"
        if not p.is_file():
            raise ModelLoadError(
                f"no step graph at {path}"
                + (" (a language model's folder holds step.onnx)" if Path(path).is_dir() else "")
            )
        self.model = Model(p, device=device, threads=threads)
        meta = self.model.metadata
        if meta.get(Meta.GRAPH) != "step" or Meta.VOCAB not in meta:
            raise ModelLoadError(
                f"{p} is not a language model's step graph (task: {meta.get(Meta.TASK)}); "
                "sampling text needs a model trained with task: language_model"
            )
        self.vocab = Vocab.from_json(meta[Meta.VOCAB])
        self.states = json.loads(meta[Meta.STATES])
        initial = json.loads(meta.get(Meta.INITIAL_STATE, "{}"))
        self._initial = {k: np.asarray(v, dtype=np.float32) for k, v in initial.items()}
        self._input = self.model.inputs[0].name
        self._outputs = [self.model.outputs[0].name] + [s["output"] for s in self.states]
        self._run = self.model._run  # inputs are built here, already checked
        self.max_positions = max_positions(meta)

    def __repr__(self) -> str:
        return f"<specc.runtime.LanguageModel {self.model.path}: {len(self.vocab)} tokens ({self.vocab.level})>"

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`; a token the model never saw is an InputError, not a silent <unk>."""
        index = self.vocab.index()
        tokens = self.vocab.split(text)
        unknown = self.vocab.unknown(tokens)
        if unknown:
            known = "".join(t for t in self.vocab.tokens[len(SPECIAL_TOKENS) :] if len(t) == 1)
            raise InputError(
                f"the prompt holds {unknown[0]!r}, which is not in this model's vocabulary "
                f"({len(self.vocab)} {self.vocab.level} tokens"
                + (f": {known!r}" if self.vocab.level == "char" and len(known) <= 120 else "")
                + ")"
            )
        return [index[t] for t in tokens]

    def decode(self, ids) -> str:
        return self.vocab.decode([int(i) for i in ids])

    def initial_state(self, batch: int = 1) -> list[np.ndarray]:
        """The state before the first token (zeros, or what the model learned)."""
        out = []
        for s in self.states:
            dims = [batch if d == "batch" else d for d in s["dims"]]
            start = self._initial.get(s["name"])
            axis = s["dims"].index("batch")
            out.append(
                np.ascontiguousarray(np.repeat(start, batch, axis=axis))
                if start is not None
                else np.zeros(dims, dtype=np.float32)
            )
        return out

    def step(self, tokens: np.ndarray, state: list[np.ndarray]) -> tuple[np.ndarray, list]:
        """(batch, time) token ids from a state -> (logits (batch, time, vocab), next state)."""
        tokens = np.asarray(tokens)
        if tokens.dtype.kind not in "iu" or tokens.ndim != 2:
            raise InputError(
                f"tokens must be (batch, time) integers, got {tokens.dtype} {tokens.shape}"
            )
        if tokens.size and (tokens.min() < 0 or tokens.max() >= len(self.vocab)):
            raise InputError(f"token ids run from 0 to {len(self.vocab) - 1}")
        return self._step(tokens, state)

    def _step(self, tokens, state):
        feeds = {self._input: np.ascontiguousarray(tokens, dtype=np.int64)}
        feeds.update({s["name"]: v for s, v in zip(self.states, state, strict=True)})
        try:
            logits, *state = self._run(self._outputs, feeds, None)
        except Exception as e:  # onnxruntime's own exception types
            raise self.model._failed(e) from e
        return logits, state

    def generate(
        self,
        prompt: str = "",
        max_tokens: int = 200,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | None = None,
        stop_at_eos: bool = True,
        details: bool = False,
    ) -> str | Decoded:
        """The prompt and up to `max_tokens` tokens after it, as text (with details=True, a
        Decoded that also says why it stopped). Generation also stops at the last position the
        model can represent, with a PositionLimitWarning."""
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 0:
            raise InputError(f"max_tokens must be a whole number >= 0, got {max_tokens!r}")
        if not np.isfinite(temperature) or temperature < 0:
            raise InputError(f"temperature must be >= 0 (0: greedy), got {temperature}")
        if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
            raise InputError(f"top_k must be a whole number >= 1, got {top_k!r}")
        if top_p is not None and not 0 < top_p <= 1:
            raise InputError(f"top_p must be in (0, 1], got {top_p}")
        ids = self.encode(prompt)
        limit = self.max_positions
        if limit is not None and 1 + len(ids) > limit:
            raise InputError(
                f"the prompt has {len(ids)} tokens; this model represents {limit} positions "
                f"(<bos> and {limit - 1} tokens)"
            )
        rng = np.random.default_rng(seed)
        logits, state = self._step(np.array([[BOS, *ids]]), self.initial_state(1))
        position = 1 + len(ids)  # the next token is fed at this position
        new, stop = [], "max_tokens"
        while len(new) < max_tokens:
            token = int(pick(logits[:, -1], temperature, top_k, top_p, rng)[0])
            if token == EOS and stop_at_eos:
                stop = "eos"
                break
            new.append(token)
            if len(new) == max_tokens:
                break
            if limit is not None and position >= limit:
                stop = "max_positions"
                break
            try:
                logits, state = self._step(np.array([[token]]), state)
            except RunError as e:
                if not past_the_table(e):
                    raise
                limit, stop = position, "max_positions"
                break
            position += 1
        if stop == "max_positions":
            warn_positions("generation", limit, len(new))
        text = self.decode(ids + new)
        return Decoded(text, new, stop) if details else text


def generate(
    model: str | Path | LanguageModel,
    prompt: str = "",
    max_tokens: int = 200,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
) -> str:
    """Text from a language model (a step.onnx, its folder, or a loaded LanguageModel)."""
    lm = model if isinstance(model, LanguageModel) else LanguageModel(model)
    return lm.generate(prompt, max_tokens, temperature, top_k, top_p, seed)
