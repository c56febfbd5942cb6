"""Text data: tokenizers, a vocabulary built from the train split alone, next-token windows,
labelled texts with padding, per-position loss and metrics, truncated BPTT, and the located
errors of text specs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import errors_of, run_specc

from specc.compiler import codegen, data
from specc.compiler import export as ex
from specc.compiler.pipeline import compile_file
from specc.runtime.contracts import BOS, EOS, PAD, UNK
from specc.runtime.contracts import SPECIAL_TOKENS as SPECIALS
from specc.runtime.text import Vocab, detokenize, tokenize

LM = """\
specc: 1
name: lm
task: language_model
inputs:
  tokens: {{shape: [time], dtype: int64}}
model:
  - {{type: embedding, num_embeddings: vocab, embedding_dim: 6}}
  - {{type: {cell}, hidden_size: 8{extra}}}
  - {{type: linear, out_features: vocab}}
data: {data}
train: {{epochs: 1, batch_size: 4{train}}}
"""


def lm_spec(write_spec, data, cell="lstm", extra="", train=""):
    return write_spec(LM.format(data=data, cell=cell, extra=extra, train=train))


def test_tokenizers_round_trip():
    assert tokenize("Hi, you!", "char") == list("Hi, you!")
    words = tokenize("The cat's hat (red), isn't it?", "word")
    assert words == [
        "The",
        "cat",
        "'",
        "s",
        "hat",
        "(",
        "red",
        ")",
        ",",
        "isn",
        "'",
        "t",
        "it",
        "?",
    ]
    assert tokenize("The Cat", "word", lowercase=True) == ["the", "cat"]
    assert detokenize(["hello", ",", "world", "!"], "word") == "hello, world!"
    assert detokenize(list("a b"), "char") == "a b"


def test_corpus_windows_are_next_token_pairs(write_spec):
    path = lm_spec(write_spec, "{type: text, text: 'abcabcabcab', seq_len: 4, val_split: 0}")
    text = compile_file(path).text
    v = text.vocab
    assert v.tokens[:4] == SPECIALS
    assert v.tokens[4:] == ("a", "b", "c")  # a and b occur 4 times, c 3 times
    stream = [BOS] + [v.index()[c] for c in "abcabcabcab"] + [EOS]
    # (len(stream) - 1) // seq_len windows; a window's target is its input shifted by one
    assert text.x.shape == text.y.shape == (3, 4)
    for i in range(3):
        np.testing.assert_array_equal(text.x[i], stream[4 * i : 4 * i + 4])
        np.testing.assert_array_equal(text.y[i], stream[4 * i + 1 : 4 * i + 5])
    # the unigram entropy over the train targets, by hand
    counts = np.bincount(text.y.ravel())
    p = counts[counts > 0] / counts.sum()
    assert text.unigram_entropy == pytest.approx(float(-(p * np.log(p)).sum()))


def test_the_vocabulary_comes_from_the_train_split_of_train_py(write_spec, tmp_path):
    """train.py's own split says which windows train; only their tokens make the vocabulary."""
    letters = "ABCDEFGHIJKLMNOPQRST"
    corpus = "".join(c * 3 for c in letters)
    path = lm_spec(write_spec, f"{{type: text, text: {corpus}, seq_len: 3, val_split: 0.25}}")
    compiled = compile_file(path)
    codegen.write(compiled, tmp_path / "gen")
    train_py = ex.load_generated(tmp_path / "gen", "train.py")
    split = train_py.split_indices(len(compiled.text.x), train_py.CONFIG["seed"])
    stream = ["<bos>", *corpus, "<eos>"]
    windows = [stream[3 * i : 3 * i + 4] for i in range(len(compiled.text.x))]
    seen = {t for i in split["train"] for t in windows[i]} - set(SPECIALS)
    v = compiled.text.vocab
    assert set(v.tokens) - set(SPECIALS) == seen
    unseen = set(letters) - seen
    assert unseen  # the validation windows hold letters the train windows never show
    index = v.index()
    for i in split["val"]:
        want = [index.get(t, UNK) for t in windows[i]]
        assert list(compiled.text.x[i]) + [compiled.text.y[i][-1]] == want
        assert (UNK in want) == bool(set(windows[i]) & unseen)


def test_labelled_jsonl_and_csv_pad_and_measure(write_spec, tmp_path):
    rows = [("good fun", "pos"), ("so very dull indeed", "neg"), ("fun", "pos"), ("dull", "neg")]
    (tmp_path / "r.jsonl").write_text(
        "\n".join(json.dumps({"review": t, "stars": y}) for t, y in rows) + "\n"
    )
    (tmp_path / "r.csv").write_text("review,stars\n" + "\n".join(f"{t},{y}" for t, y in rows))
    for name in ("r.jsonl", "r.csv"):
        path = write_spec(
            "specc: 1\nname: c\ntask: classification\n"
            "inputs: {w: {shape: [time], dtype: int64}, n: {shape: [], dtype: int64}}\n"
            "model:\n  - {type: embedding, num_embeddings: vocab, embedding_dim: 4}\n"
            "  - {type: gru, hidden_size: 4, output: last, lengths: n}\n"
            "  - {type: linear, out_features: 2}\n"
            f"data: {{type: text, path: {name}, level: word, text_field: review, "
            "label_field: stars, val_split: 0}\n"
        )
        compiled = compile_file(path)
        ds = data.prepare(compiled)
        v = ds.vocab
        assert ds.labels == ["neg", "pos"] and list(ds.y) == [1, 0, 1, 0]
        assert ds.x.shape == (4, 4) and list(ds.more[0]) == [2, 4, 1, 1]
        assert v.decode(ds.x[1]) == "so very dull indeed"
        assert list(ds.x[0, 2:]) == [PAD, PAD] and list(ds.x[2, 1:]) == [PAD] * 3
        assert compiled.parsed.layers[0].num_embeddings == len(v) == 4 + 6


@pytest.mark.parametrize(
    "data,field,message",
    [
        ("{type: text, text: ''}", "text", "the corpus is empty"),
        ("{type: text, text: abc, seq_len: 9}", "seq_len", "too few for one window"),
        ("{type: text, path: missing.txt}", "path", "text file not found"),
        ("{type: text, text: a, path: b.txt}", None, "give exactly one of path, text or generate"),
    ],
)
def test_text_data_mistakes_are_located(write_spec, data, field, message):
    path = lm_spec(write_spec, data)
    (e,) = errors_of(run_specc("check", path))
    assert message in e["msg"], e
    assert e["line"] == "10"  # the data: line


def test_vocab_sizes_need_text_data(write_spec):
    path = lm_spec(write_spec, "{type: builtin, name: digits}")
    found = errors_of(run_specc("check", path))
    assert [e["line"] for e in found] == ["7", "9"]
    assert all("vocab needs text data" in e["msg"] for e in found)


@pytest.mark.parametrize(
    "extra,line,message",
    [
        (
            ", bidirectional: true",
            8,
            "a bidirectional layer would read the tokens it has to predict",
        ),
        (", output: last", 8, "needs a prediction at every position"),
    ],
)
def test_a_language_model_must_be_causal(write_spec, extra, line, message):
    path = lm_spec(write_spec, "{type: text, text: hello there, seq_len: 4}", extra=extra)
    (e,) = errors_of(run_specc("check", path))
    assert e["line"] == str(line) and message in e["msg"], e


def test_a_conv_layer_cannot_be_part_of_a_language_model(write_spec):
    path = write_spec(
        LM.format(
            data="{type: text, text: hello, seq_len: 2}", cell="lstm", extra="", train=""
        ).replace(
            "  - {type: linear, out_features: vocab}",
            "  - {type: conv1d, out_channels: 4, kernel_size: 3}\n  - {type: linear, out_features: vocab}",
        )
    )
    (e,) = errors_of(run_specc("check", path))
    assert "mixes time steps" in e["msg"]


def test_an_embedding_smaller_than_the_vocabulary_is_refused(write_spec, tmp_path):
    path = write_spec(
        LM.format(
            data="{type: text, text: abcdefgh, seq_len: 3, val_split: 0}",
            cell="gru",
            extra="",
            train="",
        )
        .replace("num_embeddings: vocab", "num_embeddings: 5")
        .replace("out_features: vocab", "out_features: 12")
    )
    proc = run_specc("train", path, "-o", tmp_path / "run")
    (e,) = errors_of(proc)
    assert "the vocabulary has 12 tokens, but embedding 'embedding_1' has only 5 rows" in e["msg"]


def test_per_position_loss_and_accuracy_skip_padding(write_spec, tmp_path):
    path = lm_spec(write_spec, "{type: text, text: abcabc, seq_len: 2}")
    codegen.write(compile_file(path), tmp_path / "gen")
    mod = ex.load_generated(tmp_path / "gen", "train.py")
    torch.manual_seed(0)
    out = torch.randn(3, 5, 7)
    y = torch.randint(0, 7, (3, 5))
    y[0, 3:] = -100  # padding
    y[2, 1:] = -100
    real = y != -100
    want_loss = F.cross_entropy(out[real], y[real])  # the mean over real positions
    torch.testing.assert_close(mod.loss_fn(out, y), want_loss)
    correct = out.argmax(-1) == y
    per_seq = [float(correct[i][real[i]].float().mean()) for i in range(3)]
    assert float(mod.metric_sums(out, y)["accuracy"]) == pytest.approx(sum(per_seq))


def test_tbptt_truncates_the_gradient_exactly(write_spec, tmp_path):
    """Oracle: nn.RNN run by hand, chunk by chunk, with the state detached between chunks."""
    path = lm_spec(
        write_spec,
        "{type: text, text: abcdabcdabcdabcdabcd, seq_len: 6}",
        cell="rnn",
        train=", tbptt: 2",
    )
    codegen.write(compile_file(path), tmp_path / "gen")
    mod = ex.load_generated(tmp_path / "gen", "train.py")
    folder = tmp_path / "gen"
    compiled = compile_file(path)
    data.save(data.prepare(compiled), folder / "data.npz")
    (tokens,), y = mod.load_data(folder / "data.npz")
    tokens, y = torch.from_numpy(tokens[:3]), torch.from_numpy(y[:3])
    args = type("A", (), {"out": folder, "resume": False, "quiet": True, "epochs": None})()
    trainer = mod.Trainer(args, {"train": ((tokens,), y)}, torch.device("cpu"), 0, 1)
    model = trainer.model
    loss, _, _ = mod.train_batch(trainer, (tokens,), y)  # the language model's tbptt step
    got = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    # by hand
    emb, rnn, lin = model.embedding_1, model.rnn_1, model.linear_1
    h = torch.zeros(1, 3, 8)
    total = 0.0
    for start in (0, 2, 4):
        out, h = torch.nn.RNN.forward(rnn, emb(tokens[:, start : start + 2]), h)
        chunk = F.cross_entropy(lin(out).flatten(0, 1), y[:, start : start + 2].flatten()) / 3
        chunk.backward()
        total += float(chunk.detach())
        h = h.detach()
    assert float(loss) == pytest.approx(total, rel=1e-5)
    for n, p in model.named_parameters():
        torch.testing.assert_close(got[n], p.grad, msg=n)
    # and it is a truncation: full backpropagation gives another recurrent gradient
    model.zero_grad()
    mod.loss_fn(model(tokens), y).backward()
    assert not torch.allclose(got["rnn_1.weight_hh_l0"], model.rnn_1.weight_hh_l0.grad)


def test_tbptt_outside_a_language_model_is_an_error(write_spec):
    path = write_spec(
        "specc: 1\nname: r\ntask: regression\ninputs: {x: {shape: [time, 2]}}\n"
        "model:\n  - {type: gru, hidden_size: 4, output: last}\n  - {type: linear, out_features: 1}\n"
        "train: {tbptt: 4}\n"
    )
    (e,) = errors_of(run_specc("check", path))
    assert e["line"] == "8" and "tbptt" in e["msg"]


def test_vocab_json_round_trip():
    v = Vocab(SPECIALS + ("é", "a"), "char", True)
    assert Vocab.from_json(v.to_json()) == v
    assert v.encode("AÉz") == [5, 4, UNK]


def test_sequence_regression_from_npz_with_lengths(tmp_path):
    """A model's extra inputs come from the .npz arrays of their names; padding never counts."""
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 9, 600)
    x = rng.random((600, 8, 1)).astype(np.float32)
    x[np.arange(8)[None, :] >= lengths[:, None]] = 5.0  # padding that would spoil an unmasked sum
    y = np.array([x[i, : lengths[i], 0].sum() for i in range(600)], dtype=np.float32)[:, None]
    np.savez(tmp_path / "seq.npz", x=x, y=y, n=lengths)
    spec = tmp_path / "sum.yaml"
    spec.write_text(
        "specc: 1\nname: sum\ntask: regression\n"
        "inputs: {x: {shape: [time, 1]}, n: {shape: [], dtype: int64}}\n"
        "model:\n  - {type: gru, hidden_size: 16, output: last, lengths: n}\n"
        "  - {type: linear, out_features: 1}\n"
        "data: {type: npz, path: seq.npz}\n"
        "train: {epochs: 30, batch_size: 32, optimizer: {type: adam, lr: 0.01}}\n"
    )
    out = tmp_path / "run"
    proc = run_specc("train", spec, "-o", out, "--quiet", env={"OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["metrics"]["val_mse"] < 0.05 * float(np.var(y))
    proc = run_specc("evaluate", out)  # both inputs fed by name from the run's own split
    assert proc.returncode == 0, proc.stderr
    scored = dict(line.split() for line in proc.stdout.splitlines()[1:] if line.strip())
    assert float(scored["mse"]) == pytest.approx(report["metrics"]["val_mse"], abs=2e-4)
    np.savez(tmp_path / "seq.npz", x=x, y=y)  # the lengths array is gone
    (e,) = errors_of(run_specc("train", spec, "-o", tmp_path / "run2"))
    assert "seq.npz has no array 'n' (for the model input of that name)" in e["msg"]
