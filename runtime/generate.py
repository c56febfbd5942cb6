"""Text generation from a language model's step graph (step.onnx), with numpy and ONNX Runtime.

The prompt goes through the graph once; then each new token is one call that carries the
recurrent state forward, so the prefix is never recomputed. The vocabulary and the state
layout come from the file's metadata, so a step.onnx is all an application needs.

    lm = specc.runtime.LanguageModel("runs/char_lm")
    print(lm.generate("The ", max_tokens=200, temperature=0.8, top_k=20, seed=0))
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .contracts import BOS, EOS, PAD, SPECIAL_TOKENS, UNK, Meta
from .errors import InputError, ModelLoadError
from .session import Model
from .text import Vocab

NEVER = (PAD, UNK, BOS)  # never generated


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
        feeds = {self._input: np.ascontiguousarray(tokens, dtype=np.int64)}
        feeds.update({s["name"]: v for s, v in zip(self.states, state, strict=True)})
        logits, *state = self._run(self._outputs, feeds, None)
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
    ) -> str:
        """The prompt and up to `max_tokens` tokens after it, as text."""
        if not isinstance(max_tokens, int) or max_tokens < 0:
            raise InputError(f"max_tokens must be a whole number >= 0, got {max_tokens!r}")
        if temperature < 0:
            raise InputError(f"temperature must be >= 0 (0: greedy), got {temperature}")
        if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
            raise InputError(f"top_k must be a whole number >= 1, got {top_k!r}")
        if top_p is not None and not 0 < top_p <= 1:
            raise InputError(f"top_p must be in (0, 1], got {top_p}")
        ids = self.encode(prompt)
        rng = np.random.default_rng(seed)
        logits, state = self.step(np.array([[BOS, *ids]]), self.initial_state(1))
        new = []
        for _ in range(max_tokens):
            token = int(pick(logits[:, -1], temperature, top_k, top_p, rng)[0])
            if token == EOS and stop_at_eos:
                break
            new.append(token)
            logits, state = self.step(np.array([[token]]), state)
        return self.decode(ids + new)


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
