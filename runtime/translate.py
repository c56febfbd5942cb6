"""Decoding a seq2seq model through ONNX Runtime: greedy, beam search and sampling (numpy only).

encoder.onnx runs once per batch of sources; step.onnx once per written token, carrying the
decoder's state (recurrent states, transformer key/value caches) as plain arrays. Layout,
vocabularies and special ids come from the files' metadata.

    s2s = specc.runtime.Seq2Seq("runs/seq2seq_reverse")
    s2s.translate(["12345"])                                  # ['54321']
    s2s.translate(["12345"], method="beam", beam_size=4, length_penalty=0.6)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .contracts import SPECIAL_TOKENS, Meta
from .errors import InputError, ModelLoadError, RunError
from .generate import Decoded, max_positions, past_the_table, pick, warn_positions
from .session import Model
from .text import Vocab, pad_ids

METHODS = ("greedy", "beam", "sample")


class Seq2Seq:
    """A trained seq2seq model's encoder and step graphs (a `specc train` folder)."""

    def __init__(self, path: str | Path, device: str = "auto", threads: int | None = None):
        folder = Path(path)
        if folder.is_file():
            folder = folder.parent
        files = {part: folder / f"{part}.onnx" for part in ("encoder", "step")}
        missing = [str(p) for p in files.values() if not p.is_file()]
        if missing:
            raise ModelLoadError(
                f"no seq2seq graphs in {folder}: missing {', '.join(missing)} "
                "(a model trained with task: seq2seq writes encoder.onnx and step.onnx)"
            )
        self.encoder = Model(files["encoder"], device=device, threads=threads)
        self.stepper = Model(files["step"], device=device, threads=threads)
        raw = self.stepper.metadata.get(Meta.SEQ2SEQ)
        if raw is None or self.stepper.metadata.get(Meta.GRAPH) != "step":
            raise ModelLoadError(f"{files['step']} is not a seq2seq model's step graph")
        info = json.loads(raw)
        self.info = info
        self.source_vocab = Vocab.from_json(info["source_vocab"]) if info["source_vocab"] else None
        self.target_vocab = Vocab.from_json(info["target_vocab"])
        self.pad, self.bos, self.eos = (info["special"][k] for k in ("pad", "bos", "eos"))
        self.max_len = int(info["max_len"])
        self.max_positions = max_positions(self.stepper.metadata)  # the decoder's; None: any
        self._states = info["states"]
        self._memories = [m["name"] for m in info["memories"]]
        self._step_outputs = [info["logits"]] + [s["output"] for s in self._states]
        self._encoder_outputs = [o.name for o in self.encoder.outputs]

    def __repr__(self) -> str:
        src = f"{len(self.source_vocab)} source tokens" if self.source_vocab else "image source"
        return f"<specc.runtime.Seq2Seq {self.stepper.path.parent}: {src}, {len(self.target_vocab)} target tokens>"

    # ------------------------------------------------------------------ text in, text out

    def encode_texts(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Padded source ids and lengths; an unknown token is an InputError naming it."""
        if self.source_vocab is None:
            raise InputError("this model reads images, not text: call decode(images)")
        if isinstance(texts, str):
            texts = [texts]
        index, rows = self.source_vocab.index(), []
        for n, text in enumerate(texts, start=1):
            tokens = self.source_vocab.split(text)
            if not tokens:
                raise InputError(f"input {n} is empty")
            unknown = self.source_vocab.unknown(tokens)
            if unknown:
                raise InputError(
                    f"input {n} holds {unknown[0]!r}, which is not in the source vocabulary "
                    f"({', '.join(repr(t) for t in self.source_vocab.tokens[len(SPECIAL_TOKENS) :][:40])})"
                )
            rows.append([index[t] for t in tokens])
        longest = self.info.get("max_source_len")
        too_long = [i for i, r in enumerate(rows, start=1) if longest and len(r) > longest]
        if too_long:
            raise InputError(
                f"input {too_long[0]} has {len(rows[too_long[0] - 1])} tokens; this model's learned "
                f"positions cover {longest}"
            )
        return pad_ids(rows)

    def translate(self, texts: list[str] | str, details: bool = False, **options):
        """Decode each text (options as in `decode`); one output string per input (with
        details=True, a Decoded per input that also says why it stopped)."""
        single = isinstance(texts, str)
        ids, lengths = self.encode_texts([texts] if single else list(texts))
        out = self._texts(self.decode(ids, lengths, details=True, **options), details)
        return out[0] if single else out

    def caption(self, images: np.ndarray, details: bool = False, **options) -> list:
        """Decode image sources (batch, *image shape) to text."""
        if self.source_vocab is not None:
            raise InputError("this model reads text: call translate(texts)")
        images = np.asarray(images, np.float32)
        return self._texts(self.decode(images, details=True, **options), details)

    def _texts(self, decoded: tuple[list, list], details: bool) -> list:
        written, stops = decoded
        texts = [self.target_vocab.decode(s) for s in written]
        if not details:
            return texts
        return [Decoded(t, w, s) for t, w, s in zip(texts, written, stops, strict=True)]

    # ------------------------------------------------------------------ decoding

    def decode(
        self,
        source: np.ndarray,
        lengths: np.ndarray | None = None,
        method: str = "greedy",
        beam_size: int = 4,
        length_penalty: float = 0.0,
        max_len: int | None = None,
        temperature: float = 1.0,
        top_k: int | None = None,
        seed: int | None = None,
        details: bool = False,
    ) -> list[list[int]] | tuple[list[list[int]], list[str]]:
        """Token ids written for each source, without <bos>/<eos> (details=True: and why each
        stopped, "eos", "max_tokens" at max_len, or "max_positions" with a PositionLimitWarning
        when the decoder cannot represent another position; max_len is capped there).

        greedy: the likeliest token each step (never <pad> or <bos>); beam: the `beam_size` best partial sequences,
        scored by log-probability divided by ((5 + length) / 6) ** length_penalty (Wu et al.
        2016; 0 compares raw log-probabilities); sample: draws at `temperature`, from the
        `top_k` likeliest tokens when given.
        """
        if method not in METHODS:
            raise InputError(f"unknown decoding method {method!r}: use one of {', '.join(METHODS)}")
        if method == "beam" and (not isinstance(beam_size, int) or beam_size < 1):
            raise InputError(f"beam_size must be a whole number >= 1, got {beam_size!r}")
        if max_len is not None and (not isinstance(max_len, int) or max_len < 1):
            raise InputError(f"max_len must be a whole number >= 1, got {max_len!r}")
        if method == "sample" and temperature <= 0:
            raise InputError(f"temperature must be > 0 for sampling, got {temperature}")
        max_len = max_len or self.max_len
        limit = self.max_positions
        steps = min(max_len, limit) if limit is not None else max_len
        memories, states, extra = self._start(source, lengths)
        batch = len(source)
        if method == "beam":
            written, ended, limit = self._beam(
                batch, memories, states, extra, beam_size, length_penalty, steps, limit
            )
        else:
            written, ended, limit = self._sequential(
                method, batch, memories, states, extra, steps, limit, temperature, top_k, seed
            )
        at_limit = limit is not None and limit <= max_len
        stops = ["eos" if e else ("max_positions" if at_limit else "max_tokens") for e in ended]
        if "max_positions" in stops:
            warn_positions(
                "decoding",
                limit,
                max(len(w) for w, s in zip(written, stops, strict=True) if s != "eos"),
            )
        return (written, stops) if details else written

    def _sequential(
        self, method, batch, memories, states, extra, steps, limit, temperature, top_k, seed
    ):
        """Greedy or sampled decoding: (written, ended at <eos>, the position limit met)."""
        rng = np.random.default_rng(seed)
        tokens = np.full((batch, 1), self.bos, dtype=np.int64)
        done = np.zeros(batch, dtype=bool)
        written = [[] for _ in range(batch)]
        for t in range(steps):
            try:
                logits, states = self.step(tokens, memories, extra, states)
            except RunError as e:
                if t == 0 or not past_the_table(e):
                    raise
                limit = t  # the table ends here; the graph did not record it
                break
            last = logits[:, -1]
            if method == "greedy":
                last = last.copy()
                last[:, [self.pad, self.bos]] = -np.inf  # never written
                chosen = last.argmax(axis=1)
            else:
                chosen = pick(last, temperature, top_k, None, rng)
            for b in np.flatnonzero(~done):
                if chosen[b] == self.eos:
                    done[b] = True
                else:
                    written[b].append(int(chosen[b]))
            if done.all():
                break
            tokens = chosen[:, None].astype(np.int64)
        return written, done.tolist(), limit

    def _start(self, source, lengths):
        """Run the encoder: (memories, first states, the step's other inputs)."""
        feeds = {self.info["source"]["name"]: source}
        if self.info["lengths"]:
            if lengths is None:
                raise InputError("this model reads padded token ids: pass their lengths too")
            feeds[self.info["lengths"]] = lengths
        longest = self.info.get("max_source_len")
        steps = np.shape(source)[1] if self.source_vocab is not None and np.ndim(source) == 2 else 0
        if longest and steps > longest:
            raise InputError(
                f"the sources have {steps} positions; this model's learned source positions "
                f"cover {longest}"
            )
        out = self.encoder.run(**feeds)
        values = [out[n] for n in self._encoder_outputs]
        n = len(self._memories)
        extra = [np.asarray(feeds[name]) for name in self.info["step_inputs"]]
        return values[:n], values[n:], extra

    def step(self, tokens, memories, extra, states):
        """One decoder call: (logits (batch, time, vocabulary), next states)."""
        feeds = {self.info["target"]: tokens}
        feeds.update(zip(self._memories, memories, strict=True))
        feeds.update(zip(self.info["step_inputs"], extra, strict=True))
        feeds.update((s["name"], v) for s, v in zip(self._states, states, strict=True))
        try:
            logits, *states = self.stepper._run(self._step_outputs, feeds, None)
        except Exception as e:  # onnxruntime's own exception types
            raise self.stepper._failed(e) from e
        return logits, states

    def _beam(self, batch, memories, states, extra, k, alpha, max_len, limit):
        """Beam search, vectorized over the batch: each step keeps, per source, the k best
        continuations that do not end; the first k that end (<eos>) are the candidates."""

        def tile(arrays, axes):  # each row k times, next to each other
            return [np.repeat(a, k, axis=ax) for a, ax in zip(arrays, axes, strict=True)]

        memories = tile(memories, [0] * len(memories))
        extra = tile(extra, [0] * len(extra))
        axes = [s["batch_axis"] for s in self._states]
        states = tile(states, axes)
        scores = np.full((batch, k), -np.inf)
        scores[:, 0] = 0.0  # the k copies start equal: keep one until they differ
        seqs = np.zeros((batch * k, 0), dtype=np.int64)  # live sequences, row b * k + j
        finished = [[] for _ in range(batch)]  # (normalized score, tokens), best first
        tokens = np.full((batch * k, 1), self.bos, dtype=np.int64)
        base = np.arange(batch)[:, None] * k

        def norm(score, length):
            return score / (((5.0 + length) / 6.0) ** alpha)

        for t in range(max_len):
            try:
                logits, states = self.step(tokens, memories, extra, states)
            except RunError as e:
                if t == 0 or not past_the_table(e):
                    raise
                limit = t  # the table ends here; the graph did not record it
                break
            last = logits[:, -1].astype(np.float64)
            logp = last - last.max(axis=1, keepdims=True)
            logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))
            vocab = logp.shape[1]
            logp[:, [self.pad, self.bos]] = -np.inf  # never written
            total = (scores.reshape(-1, 1) + logp).reshape(batch, k * vocab)
            order = np.argsort(-total, axis=1, kind="stable")[:, : 2 * k]  # best first
            values = np.take_along_axis(total, order, axis=1)
            parent, token = np.divmod(order, vocab)
            finite = np.isfinite(values)
            ends = finite & (token == self.eos)
            live = finite & ~ends
            rank = np.cumsum(live, axis=1)  # among live candidates, 1-based
            considered = rank - live < k  # fewer than k live ones ranked above
            for b, j in zip(*np.nonzero(ends & considered), strict=True):
                if len(finished[b]) < k:
                    row = seqs[b * k + parent[b, j]].tolist()
                    finished[b].append((norm(values[b, j], t + 1), row))
            if all(len(f) >= k for f in finished):
                break
            rows_b, cols = np.nonzero(live & considered)
            slot = rank[rows_b, cols] - 1
            scores = np.full((batch, k), -np.inf)
            scores[rows_b, slot] = values[rows_b, cols]
            rows = (
                base.repeat(k, axis=1).reshape(-1).copy()
            )  # dead slots copy row 0 of their source
            rows[rows_b * k + slot] = rows_b * k + parent[rows_b, cols]
            new_tokens = np.zeros(batch * k, dtype=np.int64)
            new_tokens[rows_b * k + slot] = token[rows_b, cols]
            seqs = np.concatenate([seqs[rows], new_tokens[:, None]], axis=1)
            states = [np.take(s, rows, axis=ax) for s, ax in zip(states, axes, strict=True)]
            tokens = new_tokens[:, None]
        out, ended = [], []
        for b in range(batch):
            options = list(finished[b])
            ended.append(bool(options))
            if not options:  # nothing ended within max_len: the best unfinished
                options = [
                    (norm(scores[b, j], seqs.shape[1]), seqs[b * k + j].tolist())
                    for j in range(k)
                    if np.isfinite(scores[b, j])
                ]
            out.append(list(max(options, key=lambda o: o[0])[1]))
        return out, ended, limit
