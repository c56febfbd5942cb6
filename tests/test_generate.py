"""Language models end to end: the example specs train to their stated results, the step graph
carries state exactly, and sampling through ONNX Runtime follows its definition."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
import torch
from helpers import REPO, SPECS, run_specc

import specc.runtime as sr
from specc.compiler import export as ex
from specc.runtime.contracts import BOS
from specc.runtime.contracts import SPECIAL_TOKENS as SPECIALS
from specc.runtime.generate import pick


@pytest.fixture(scope="module")
def hello(tmp_path_factory):
    out = tmp_path_factory.mktemp("hello") / "run"
    proc = run_specc("train", SPECS / "rnn_hello.yaml", "-o", out, "--quiet")
    assert proc.returncode == 0, proc.stderr
    return out


def test_rnn_hello_learns_the_word(hello):
    lm = sr.LanguageModel(hello)
    assert set(lm.vocab.tokens) - set(SPECIALS) == set("helo")
    logits, _ = lm.step(np.array([[BOS, *lm.encode("hell")]]), lm.initial_state())
    assert lm.vocab.tokens[int(logits[0, -1].argmax())] == "o"  # not "l": it remembers
    logits, _ = lm.step(np.array([[BOS, *lm.encode("hel")]]), lm.initial_state())
    assert lm.vocab.tokens[int(logits[0, -1].argmax())] == "l"
    assert lm.generate("h", max_tokens=10, temperature=0) == "hello"  # then <eos>
    proc = run_specc("sample", hello, "--prompt", "h", "-t", "0")
    assert proc.returncode == 0 and proc.stdout.strip() == "hello", proc.stderr


def test_greedy_generation_equals_a_pytorch_loop(hello):
    """Oracle: the trained model stepped by hand in PyTorch, one token per call."""
    report = json.loads((hello / "report.json").read_text())
    model = ex.instantiate(hello, hello / report["weights"])
    lm = sr.LanguageModel(hello)
    ids = [BOS, *lm.encode("he")]
    with torch.no_grad():
        logits, *state = model.step(torch.tensor([ids]), *model.initial_state(1))
        out = []
        for _ in range(3):
            token = int(logits[0, -1, 3:].argmax()) + 3  # never pad, unk or bos
            out.append(token)
            logits, *state = model.step(torch.tensor([[token]]), *state)
    assert lm.generate("he", max_tokens=3, temperature=0, stop_at_eos=False) == lm.decode(
        ids[1:] + out
    )
    assert report["step_parity"]["ok"] and report["step_parity"]["runs"][-1]["inputs"] == "chained"


def test_sampling_needs_the_models_vocabulary(hello, tmp_path):
    proc = run_specc("sample", hello, "--prompt", "help!")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "the prompt holds 'p', which is not in this model's vocabulary" in proc.stderr
    for bad, message in (
        (["--top-k", "0"], "top_k must be a whole number >= 1"),
        (["-t", "-1"], "temperature must be >= 0"),
        (["-n", "-3"], "max_tokens must be a whole number >= 0"),
    ):
        proc = run_specc("sample", hello, *bad)
        assert proc.returncode == 1 and message in proc.stderr, proc.stderr
    proc = run_specc("sample", tmp_path)
    assert proc.returncode == 1 and "no step graph" in proc.stderr


def test_pick_follows_temperature_top_k_and_top_p():
    """Oracle: the distributions written out by hand, compared with 20,000 draws."""
    logits = np.log(np.array([[1e-9, 1e-9, 1e-9, 0.1, 0.2, 0.3, 0.4]]))
    rng = np.random.default_rng(0)
    assert pick(logits, 0.0, None, None, rng)[0] == 6

    def freq(**kw):
        draws = Counter(int(pick(logits, rng=rng, **kw)[0]) for _ in range(20000))
        return np.array([draws[i] / 20000 for i in range(7)])

    np.testing.assert_allclose(
        freq(temperature=1.0, top_k=None, top_p=None)[3:], [0.1, 0.2, 0.3, 0.4], atol=0.015
    )
    np.testing.assert_allclose(
        freq(temperature=1.0, top_k=2, top_p=None)[3:], [0, 0, 3 / 7, 4 / 7], atol=0.015
    )
    # top_p 0.65: 0.4 + 0.3 reach it; 0.2 and 0.1 are cut
    np.testing.assert_allclose(
        freq(temperature=1.0, top_k=None, top_p=0.65)[3:], [0, 0, 3 / 7, 4 / 7], atol=0.015
    )
    hot = np.array([0.1, 0.2, 0.3, 0.4]) ** 0.5  # temperature 2 takes the square root
    np.testing.assert_allclose(
        freq(temperature=2.0, top_k=None, top_p=None)[3:], hot / hot.sum(), atol=0.015
    )
    assert freq(temperature=1.0, top_k=None, top_p=None)[:3].sum() == 0  # pad, unk, bos never


def test_char_lm_learns_its_corpus_and_samples(tmp_path):
    """Loss well under the corpus's unigram entropy, computed here from the docs themselves."""
    out = tmp_path / "run"
    proc = run_specc("train", SPECS / "char_lm.yaml", "-o", out, "--quiet")
    assert proc.returncode == 0, proc.stderr
    report = json.loads((out / "report.json").read_text())
    corpus = "\n\n".join(
        p.read_text(encoding="utf-8")
        for p in sorted((REPO / "docs").iterdir())
        if p.suffix in (".md", ".txt")
    )
    counts = np.array(list(Counter(corpus).values()), dtype=np.float64)
    p = counts / counts.sum()
    entropy = float(-(p * np.log(p)).sum())
    assert report["unigram_entropy"] == pytest.approx(entropy, rel=0.02)  # train split vs all
    assert report["metrics"]["val_loss"] < 0.7 * entropy
    assert report["parity"]["ok"] and report["step_parity"]["ok"]
    lm = sr.LanguageModel(out)
    a = lm.generate("The ", max_tokens=80, temperature=0.8, top_k=20, seed=3)
    assert a == lm.generate("The ", max_tokens=80, temperature=0.8, top_k=20, seed=3)
    assert a.startswith("The ") and len(a) > 40
    assert a != lm.generate("The ", max_tokens=80, temperature=0.8, top_k=20, seed=4)


def test_sentiment_gru_reads_word_order(tmp_path):
    """The generated reviews defeat a bag of words; the bidirectional GRU gets them right."""
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression

    from specc.compiler.datasets.sentiment import generate

    texts, labels = generate(2000, seed=0)
    bag = CountVectorizer().fit_transform(texts)
    baseline = (
        LogisticRegression(max_iter=2000)
        .fit(bag[:1400], labels[:1400])
        .score(bag[1400:], labels[1400:])
    )
    assert baseline < 0.75
    out = tmp_path / "run"
    proc = run_specc("train", SPECS / "sentiment_gru.yaml", "-o", out, "--quiet")
    assert proc.returncode == 0, proc.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["metrics"]["test_accuracy"] >= 0.95
    # served through ONNX Runtime: a padded batch scores each review as it scores alone
    model = sr.load(out)
    vocab = sr.text.Vocab.from_json(model.metadata["specc.vocab"])
    reviews = ["the plot was dull but the acting was superb", "the music was not good"]
    ids = [vocab.encode(r) for r in reviews]
    width = max(map(len, ids))
    padded = np.array([i + [0] * (width - len(i)) for i in ids])
    both = model(words=padded, lengths=np.array([len(i) for i in ids]))
    for k, i in enumerate(ids):
        alone = model(words=np.array([i]), lengths=np.array([len(i)]))
        np.testing.assert_allclose(both[k], alone[0], atol=1e-5)
    assert [model.labels[int(c)] for c in both.argmax(axis=1)] == ["positive", "negative"]
