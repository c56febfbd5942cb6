"""A model that never writes <eos>: decoding stops at the last position it can represent, says
so (a PositionLimitWarning, and `stop` in the details), and writes what PyTorch writes up to
there. Seq2seq with a learned decoder table, read from Meta.MAX_POSITIONS or, for a graph
exported without it, found where the step graph's table ends; a language model's step graph."""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import pytest
import torch
import yaml

import specc.runtime as sr
from specc.compiler import codegen
from specc.compiler import export as ex
from specc.compiler.export import language_model as ex_lm
from specc.compiler.export import seq2seq as ex2
from specc.compiler.pipeline import compile_file
from specc.runtime.contracts import BOS, EOS, Meta

ROWS = 5  # the decoder's learned position table

SEQ2SEQ = {
    "specc": 1,
    "name": "s2s",
    "task": "seq2seq",
    "inputs": {"source": {"shape": ["time"], "dtype": "int64"}},
    "encoder": [
        {"type": "embedding", "num_embeddings": "source_vocab", "embedding_dim": 16},
        {"type": "positional_encoding"},
        {
            "type": "transformer_encoder_layer",
            "name": "memory",
            "num_heads": 2,
            "feedforward": 32,
            "dropout": 0.0,
            "lengths": "source_lengths",
        },
    ],
    "decoder": [
        {"type": "embedding", "num_embeddings": "target_vocab", "embedding_dim": 16},
        {"type": "positional_encoding", "name": "positions", "kind": "learned", "max_len": ROWS},
        {
            "type": "transformer_decoder_layer",
            "from": ["positions", "memory"],
            "num_heads": 2,
            "feedforward": 32,
            "dropout": 0.0,
            "lengths": "source_lengths",
        },
        {"type": "linear", "out_features": "target_vocab"},
    ],
    "data": {"type": "pairs", "path": "pairs.tsv", "val_split": 0.0},
}


def never_ends(model, vocab_size: int) -> None:
    """The output layer's <eos> bias pushed far down: the model never writes <eos>."""
    last = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
    assert last.out_features == vocab_size
    with torch.no_grad():
        last.bias[EOS] = -1e4


def with_metadata(path, key: str, value: str | None) -> None:
    proto = onnx.load(str(path))
    kept = [p for p in proto.metadata_props if p.key != key]
    del proto.metadata_props[:]
    for p in kept:
        proto.metadata_props.add().CopyFrom(p)
    if value is not None:
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(path))


@pytest.fixture(scope="module")
def seq2seq(tmp_path_factory):
    root = tmp_path_factory.mktemp("endless")
    (root / "pairs.tsv").write_text("ab\tba\nba\tab\naab\tbaa\nbb\taa\n", encoding="utf-8")
    (root / "s2s.yaml").write_text(yaml.safe_dump(SEQ2SEQ, sort_keys=False))
    compiled = compile_file(root / "s2s.yaml")
    codegen.write(compiled, root / "gen")
    torch.manual_seed(0)
    model = ex.instantiate(root / "gen")
    vocabs = {"source": compiled.text.source_vocab, "target": compiled.text.target_vocab}
    never_ends(model, len(vocabs["target"]))
    info = ex2.describe(compiled.ir, vocabs, {"target": 3})
    assert info["max_len"] == 8 > ROWS  # the default cap runs past the table
    folders = {}
    for name, table in (("recorded", ROWS), ("unrecorded", None)):
        out = root / name
        ex2.export(model, compiled.ir, out, 20, {**info, "max_target_len": table})
        meta = {p.key: p.value for p in onnx.load(str(out / "step.onnx")).metadata_props}
        # the exporter records the decoder's table in the step graph (absent: an older graph)
        assert meta.get(Meta.MAX_POSITIONS) == (str(table) if table else None)
        folders[name] = out
    return model, folders


@pytest.mark.parametrize("graph", ["recorded", "unrecorded"])
def test_seq2seq_decoding_stops_at_the_decoders_last_position(seq2seq, graph):
    model, folders = seq2seq
    s2s = sr.Seq2Seq(folders[graph])
    assert s2s.max_positions == (ROWS if graph == "recorded" else None)
    ids, lengths = s2s.encode_texts(["ab", "bba"])
    with torch.no_grad():  # oracle: PyTorch's greedy decoding over the table's positions
        want = model.greedy(torch.from_numpy(ids), torch.from_numpy(lengths), max_len=ROWS)
    want = [[int(t) for t in row if t not in (EOS, 0)] for row in want.tolist()]
    for method, options in (("greedy", {}), ("beam", {"beam_size": 3}), ("sample", {"seed": 1})):
        with pytest.warns(sr.PositionLimitWarning, match=f"represents {ROWS} positions"):
            written, stops = s2s.decode(ids, lengths, method=method, details=True, **options)
        assert stops == ["max_positions", "max_positions"], method
        assert [len(w) for w in written] == [ROWS, ROWS], method
        if method == "greedy":
            assert written == want
    with pytest.warns(sr.PositionLimitWarning):
        out = s2s.translate(["ab"], details=True)
    assert out[0].stop == "max_positions" and len(out[0].tokens) == ROWS
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a cap below the table is the caller's: no warning
        written, stops = s2s.decode(ids, lengths, max_len=3, details=True)
    assert stops == ["max_tokens", "max_tokens"] and written == [w[:3] for w in want]


LM = """\
specc: 1
name: lm
task: language_model
inputs:
  tokens: {shape: [time], dtype: int64}
output: logits
model:
  - {type: embedding, num_embeddings: vocab, embedding_dim: 8}
  - {type: gru, hidden_size: 16}
  - {type: linear, out_features: vocab}
data: {type: text, text: hello world, seq_len: 6, val_split: 0}
"""


@pytest.fixture(scope="module")
def language_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("lm")
    (root / "lm.yaml").write_text(LM)
    compiled = compile_file(root / "lm.yaml")
    codegen.write(compiled, root)
    torch.manual_seed(0)
    model = ex.instantiate(root)
    never_ends(model, len(compiled.text.vocab))
    ex_lm.export_step(model, compiled.ir, root / "step.onnx", 20, compiled.text.vocab.to_json())
    return root


def test_generation_stops_at_the_step_graphs_last_position(language_model):
    lm = sr.LanguageModel(language_model)
    assert lm.max_positions is None  # recurrent: nothing bounds its positions
    free = lm.generate("he", max_tokens=40, temperature=0, details=True)
    assert free.stop == "max_tokens" and len(free.tokens) == 40
    with_metadata(language_model / "step.onnx", Meta.MAX_POSITIONS, "7")
    lm = sr.LanguageModel(language_model)
    assert lm.max_positions == 7
    with pytest.warns(sr.PositionLimitWarning, match="represents 7 positions"):
        out = lm.generate("he", max_tokens=40, temperature=0, details=True)
    # <bos>, "h", "e" take positions 0-2; tokens fed at 3-6, and the last one picked
    assert out.stop == "max_positions" and len(out.tokens) == 5
    assert out.tokens == free.tokens[:5] and out.text == "he" + lm.decode(free.tokens[:5])
    with pytest.warns(sr.PositionLimitWarning):
        assert lm.generate("he", max_tokens=40, temperature=0) == out.text
    assert lm.generate("he", max_tokens=3, temperature=0, details=True).stop == "max_tokens"
    with pytest.raises(sr.InputError, match="the prompt has 7 tokens; this model represents 7"):
        lm.generate("hello w")
    with pytest.raises(sr.InputError, match="token ids run from 0 to"):
        lm.step(np.array([[BOS, 99]]), lm.initial_state())
