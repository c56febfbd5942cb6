"""Embedding anywhere: specc.json and tokenizer.json, the JavaScript runtime under Node, and the
`specc export --web` page in headless Chromium, each against the Python runtime.

Small models of every task are trained once for this module (one epoch, small data): the point
is that JavaScript computes what Python computes, not that the models are good. The Node side
runs runtime/js's node:test files on cases written here (inputs and Python's answers); the
browser side drives each page with playwright-core in Debian's Chromium, reads the answer the
page shows and compares it with Python's on the same input. `make test` installs Node's packages
(npm ci) and Chromium first; without node the module is skipped, saying so.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import shutil
import subprocess
import threading
from pathlib import Path

import numpy as np
import onnx
import pytest
from helpers import REPO, SPECS, run_specc

import specc.runtime as sr
from specc.runtime import describe
from specc.runtime.text import Vocab, pad_ids

JS = REPO / "runtime" / "js"
NODE = shutil.which("node")
CHROMIUM = os.environ.get("SPECC_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ORT_WEB = JS / "node_modules" / "onnxruntime-web"

pytestmark = [
    pytest.mark.skipif(NODE is None, reason="node is not installed (make test installs it)"),
    pytest.mark.xdist_group("js"),  # one worker trains the models and runs node and the browser
]

# Text with accents (precomposed and combining), Greek with a final sigma, CJK, emoji, digits of
# other scripts, superscripts and connector punctuation: where Python's \w and JavaScript's differ.
NON_ASCII = (
    "Café au lait, naïve façade. Cafe\u0301 again! ΟΔΟΣ and σοφός. 日本語のテキスト。"
    " Emoji 😀👍🏽 here; digits ٣٤٥ and x² and ½; snake_case and a‿b. İstanbul, ǅemal."
)
CORPUS = (NON_ASCII + "\n") + "The cat sat on the mat. The café was open; the naïve cat ate. " * 30


def _json_array(a) -> dict:
    a = np.asarray(a)
    return {"dtype": str(a.dtype), "dims": list(a.shape), "data": a.ravel().tolist()}


def node(*args, env=None, timeout=300) -> subprocess.CompletedProcess:
    if not (JS / "node_modules" / "onnxruntime-node").is_dir():
        pytest.fail("runtime/js's packages are not installed: make js (make test does it)")
    return subprocess.run(
        [NODE, *map(str, args)],
        cwd=JS,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def node_parity(tmp_path: Path, cases: list[dict]) -> str:
    """Run runtime/js/test/parity.test.js on these cases; every case must pass."""
    path = tmp_path / "cases.json"
    path.write_text(json.dumps({"cases": cases}), encoding="utf-8")
    proc = node("--test", "test/parity.test.js", env={"SPECC_JS_CASES": str(path)})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    assert f"# pass {len(cases) + 1}" in out and "# fail 0" in out, out[-3000:]
    return out


# ------------------------------------------------------------------------------ models


TABULAR = """
specc: 1
name: iris csv
task: classification
inputs:
  measurements: {shape: [4]}
model:
  - {type: linear, out_features: 16}
  - relu
  - {type: linear, out_features: 3}
data: {type: csv, path: iris.csv, label: species, standardize: true,
       features: [petal_width, sepal_length, petal_length, sepal_width]}
train: {epochs: 5, batch_size: 16, optimizer: {type: adam, lr: 0.01}}
"""

CHAR_LM = """
specc: 1
name: tiny char lm
task: language_model
inputs:
  tokens: {shape: [time], dtype: int64}
model:
  - {type: embedding, num_embeddings: vocab, embedding_dim: 16}
  - {type: lstm, hidden_size: 32, num_layers: 2}
  - {type: linear, out_features: vocab}
data: {type: text, text: TEXT, level: char, seq_len: 24, val_split: 0.1}
train: {epochs: 2, batch_size: 16, optimizer: {type: adam, lr: 0.01}}
"""

WORD_LM = """
specc: 1
name: tiny word lm
task: language_model
inputs:
  tokens: {shape: [time], dtype: int64}
model:
  - {type: embedding, num_embeddings: vocab, embedding_dim: 16}
  - {type: gru, hidden_size: 24, initial_state: learned}
  - {type: linear, out_features: vocab}
data: {type: text, text: TEXT, level: word, lowercase: true, seq_len: 8, val_split: 0.1}
train: {epochs: 2, batch_size: 16, optimizer: {type: adam, lr: 0.01}}
"""

EXAMPLES = {  # spec, overrides: one epoch (or a few on tiny data), small data, no targets
    "lenet5": ("lenet5.yaml", ["train.epochs=1"]),
    "sentiment_gru": (
        "sentiment_gru.yaml",
        ["train.epochs=2", "data.count=400", "train.target.min=0"],
    ),
    "seq2seq_reverse": (
        "seq2seq_reverse.yaml",
        ["train.epochs=2", "data.count=800", "train.target.min=0"],
    ),
    # the decoder's learned positions cover the default decoding cap (an untrained model
    # may never write <eos>: 16 positions would be too few for its max_len of 2 * 10 + 2)
    "transformer": (
        "transformer_copy_sort.yaml",
        ["train.epochs=1", "data.count=500", "train.target.min=0", "decoder.1.max_len=24"],
    ),
    "captioning": (
        "captioning_toy.yaml",
        ["train.epochs=1", "data.count=300", "train.target.min=0"],
    ),
    "vae_digits": ("vae_digits.yaml", ["train.epochs=2", "train.target.min=-1000"]),
    "dcgan_digits": ("dcgan_digits.yaml", ["train.epochs=1"]),
    "alvinn": ("alvinn.yaml", ["train.epochs=1", "data.count=300", "train.target.max=100"]),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """name -> a trained run folder (trained on first use, once for the module)."""
    made: dict[str, Path] = {}
    base = tmp_path_factory.mktemp("js-runs")

    def get(name: str) -> Path:
        if name in made:
            return made[name]
        out = base / name
        if name in EXAMPLES:
            spec, overrides = EXAMPLES[name]
            args = [SPECS / spec]
        else:
            specs = base / "specs"
            specs.mkdir(exist_ok=True)
            text = {"tabular": TABULAR, "char_lm": CHAR_LM, "word_lm": WORD_LM}[name]
            if name == "tabular":
                _iris_csv(specs / "iris.csv")
            path = specs / f"{name}.yaml"
            path.write_text(
                text.replace("TEXT", json.dumps(CORPUS, ensure_ascii=False)), encoding="utf-8"
            )
            args, overrides = [path], []
        sets = [a for o in overrides for a in ("--set", o)]
        proc = run_specc("train", *args, "-o", out, "--quiet", *sets)
        # a missed train.target still exports everything; these runs only need the graphs
        assert (out / "specc.json").is_file(), proc.stderr + proc.stdout
        made[name] = out
        return out

    return get


def _iris_csv(path: Path) -> None:
    from sklearn.datasets import load_iris

    iris = load_iris()
    names = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    lines = [",".join([*names, "species"])]
    for row, target in zip(iris.data, iris.target, strict=True):
        lines.append(",".join([*(f"{v:g}" for v in row), str(iris.target_names[target])]))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


# ------------------------------------------------------------------------------ specc.json


ALL = ["lenet5", "tabular", "sentiment_gru", "char_lm", "seq2seq_reverse", "vae_digits"]


@pytest.mark.slow
def test_specc_json_is_the_graphs_metadata_and_a_check_catches_any_disagreement(runs, tmp_path):
    for name in ALL:
        folder = runs(name)
        assert describe.check(folder) == [], name
        desc = json.loads((folder / "specc.json").read_text(encoding="utf-8"))
        for graph, info in desc["graphs"].items():
            proto = onnx.load(str(folder / info["file"]))
            assert info["metadata"] == {p.key: p.value for p in proto.metadata_props}, graph
            assert [i["name"] for i in info["inputs"]] == [i.name for i in proto.graph.input]
    # a hand-edited description, and graphs re-exported under it, are both caught
    copy = shutil.copytree(runs("sentiment_gru"), tmp_path / "copy")
    desc = json.loads((copy / "specc.json").read_text(encoding="utf-8"))
    desc["output"]["labels"] = ["positive", "negative"]
    (copy / "specc.json").write_text(json.dumps(desc), encoding="utf-8")
    assert describe.check(copy) == ["specc.json disagrees with the graphs at output"]
    describe.write(copy)
    proto = onnx.load(str(copy / "model.onnx"))
    for p in proto.metadata_props:
        if p.key == "specc.labels":
            p.value = json.dumps(["bad", "good"])
    onnx.save(proto, str(copy / "model.onnx"))
    problems = describe.check(copy)
    assert problems == ["specc.json disagrees with the graphs at graphs, output"]
    describe.write(copy)  # written from the graphs again: the labels follow the metadata
    assert json.loads((copy / "specc.json").read_text())["output"]["labels"] == ["bad", "good"]


@pytest.mark.slow
def test_specc_json_holds_what_a_client_needs_per_task(runs):
    lenet = json.loads((runs("lenet5") / "specc.json").read_text())
    image = lenet["inputs"][0]
    assert image["role"] == "image" and image["dims"] == ["batch", 1, 28, 28]
    assert image["preprocess"]["steps"] == [
        {"op": "scale", "by": 0.0625},
        {
            "op": "resize",
            "mode": "bilinear",
            "align_corners": False,
            "antialias": False,
            "to": [28, 28],
        },
    ]
    assert lenet["output"]["labels"] == [str(i) for i in range(10)]
    assert lenet["output"]["probabilities"] == "softmax over the last axis"

    tab = json.loads((runs("tabular") / "specc.json").read_text())["inputs"][0]
    assert tab["role"] == "features" and tab["preprocess"]["standardize"]["where"] == "in_graph"
    # raw columns (the graph standardizes them) with the training split's statistics
    train = np.load(runs("tabular") / "splits.npz")["train"]
    x = np.load(runs("tabular") / "data.npz")["x"][train].astype(np.float64)
    standardize = tab["preprocess"]["standardize"]
    assert np.allclose(standardize["mean"], x.mean(axis=0), rtol=1e-5)
    assert np.allclose(standardize["std"], x.std(axis=0, ddof=1), rtol=1e-5)
    assert tab["preprocess"]["columns"] == [
        "petal_width",
        "sepal_length",
        "petal_length",
        "sepal_width",
    ]

    lm = json.loads((runs("word_lm") / "specc.json").read_text())
    gen = lm["generate"]
    assert gen["special"] == {"pad": 0, "unk": 1, "bos": 2, "eos": 3} and gen["pick"]["never"] == [
        0,
        1,
        2,
    ]
    (state,) = gen["states"]
    assert state["batch_axis"] == 1 and state["output"].startswith("next.")
    assert np.asarray(state["initial"]).shape == (1, 1, 24)  # learned, for batch 1
    assert lm["tokenizers"]["text"]["lowercase"] and lm["tokenizers"]["text"]["unknown"] == "error"

    s2s = json.loads((runs("seq2seq_reverse") / "specc.json").read_text())["translate"]
    assert s2s["encoder"]["lengths"] == "source_lengths"
    assert s2s["step"]["from_encoder_inputs"] == ["source_lengths"]
    assert [m["from_encoder_output"] for m in s2s["step"]["memories"]] == ["memory.encoded"]
    assert (runs("seq2seq_reverse") / "target_tokenizer.json").is_file()

    # the tokenizer files a run folder holds give its vocabularies' ids in Hugging Face tokenizers
    tokenizers = pytest.importorskip("tokenizers")
    for name in ("char_lm", "word_lm", "sentiment_gru", "seq2seq_reverse"):
        desc = json.loads((runs(name) / "specc.json").read_text())
        for entry in desc["tokenizers"].values():
            vocab = Vocab(tuple(entry["tokens"]), entry["level"], entry["lowercase"])
            hf = tokenizers.Tokenizer.from_file(str(runs(name) / entry["file"]))
            for text in (CORPUS, "12345 90817", "the plot was dull but the acting was superb"):
                assert hf.encode(text).ids == vocab.encode(text), (name, entry["file"])

    vae = json.loads((runs("vae_digits") / "specc.json").read_text())["autoencoder"]
    assert vae["latent"] == {"dim": 2, "type": "gaussian", "prior": "standard_normal"}
    assert vae["encoder"]["outputs"] == ["mean", "log_var"]


# ------------------------------------------------------------------------------ tokens


def _vocabs() -> list[Vocab]:
    """Vocabularies holding non-ASCII tokens, each level with and without lowercasing."""
    out = []
    for level in ("char", "word"):
        for lowercase in (False, True):
            tokens = Vocab((), level, lowercase).split(CORPUS)
            counts: dict[str, int] = {}
            for t in tokens:
                counts[t] = counts.get(t, 0) + 1
            kept = sorted(counts, key=lambda t: (-counts[t], t))[:-3]  # a few stay unknown
            out.append(Vocab(("<pad>", "<unk>", "<bos>", "<eos>", *kept), level, lowercase))
    return out


TEXTS = [
    NON_ASCII,
    NON_ASCII.upper(),
    "café cafe\u0301 CAFÉ ΣΊΣΥΦΟΣ ΟΔΟΣ. Α'Σ x²y ٣٤ a‿b __init__",
    "tabs\tand\nnewlines\r\n and \u00a0no-break\u2009thin\u3000ideographic spaces",
    "<pad> <unk> <bos> <eos> are plain text here",
    "",
]


def test_tokenizer_json_gives_specc_ids_in_hugging_face_tokenizers(tmp_path):
    tokenizers = pytest.importorskip("tokenizers")
    for vocab in _vocabs():
        path = tmp_path / f"{vocab.level}-{vocab.lowercase}.json"
        path.write_text(json.dumps(describe.tokenizer_json(vocab)), encoding="utf-8")
        hf = tokenizers.Tokenizer.from_file(str(path))
        for text in TEXTS + CORPUS.splitlines():
            assert hf.encode(text).ids == vocab.encode(text), (vocab.level, vocab.lowercase, text)
        ids = vocab.encode(TEXTS[0])
        assert 1 in ids and len(set(ids)) > 10  # known and unknown tokens were both compared
        if vocab.level == "char":  # characters fuse back into the text
            known = vocab.encode("The café, 日本")
            assert hf.decode(known) == vocab.decode(known)


def test_javascript_splits_encodes_and_joins_text_as_python_does(tmp_path):
    cases = []
    for vocab in _vocabs():
        entry = describe._tokenizer(vocab, "tokenizer.json", "unk")
        path = tmp_path / f"{vocab.level}-{vocab.lowercase}.specc.json"
        path.write_text(json.dumps({"tokenizers": {"text": entry}}), encoding="utf-8")
        texts = TEXTS + CORPUS.splitlines()[:3]
        ids = [vocab.encode(t) for t in texts]
        cases.append(
            {
                "kind": "tokenize",
                "name": f"{vocab.level} level, lowercase {vocab.lowercase}",
                "specc_json": str(path),
                "tokenizer": "text",
                "texts": texts,
                "expected": {
                    "tokens": [vocab.split(t) for t in texts],
                    "ids": ids,
                    "decoded": [vocab.decode(i) for i in ids],
                },
            }
        )
    node_parity(tmp_path, cases)


def test_node_unit_tests_pass():
    proc = node("--test", "test/unit.test.js")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]


# ------------------------------------------------------------------------------ Node parity


def _digits_raw(n: int = 6) -> np.ndarray:
    """scikit-learn's raw digits (8x8 counts 0..16), the values specc.preprocess starts from."""
    from sklearn.datasets import load_digits

    return load_digits().images[-n:].astype(np.float32)[:, None]


@pytest.mark.slow
def test_classifiers_in_node_equal_python(runs, tmp_path):
    cases = []
    lenet = runs("lenet5")
    model = sr.load(lenet)
    raw = _digits_raw()
    import torch

    # preprocessing: JS turns raw digits into what training fed (torch's bilinear resize)
    x = torch.nn.functional.interpolate(
        torch.from_numpy(raw / np.float32(16)), size=(28, 28), mode="bilinear", align_corners=False
    ).numpy()
    cases.append(
        {
            "kind": "preprocess",
            "name": "lenet5 digits",
            "folder": str(lenet),
            "raw": _json_array(raw[0]),
            "expected": _json_array(x[0]),
        }
    )
    data = np.load(lenet / "data.npz")
    for name, folder, batch in [
        ("lenet5 drawn digits", lenet, x),
        ("lenet5 data", lenet, data["x"][:16]),
        ("iris csv rows", runs("tabular"), np.load(runs("tabular") / "data.npz")["x"][::10]),
    ]:
        m = model if folder == lenet else sr.load(folder)
        pred = m.predict(batch)
        cases.append(
            {
                "kind": "classify",
                "name": name,
                "folder": str(folder),
                "inputs": {m.inputs[0].name: _json_array(batch)},
                "expected": {
                    "classes": pred.classes.tolist(),
                    "labels": pred.labels,
                    "probabilities": pred.probabilities.tolist(),
                },
            }
        )
    sentiment = runs("sentiment_gru")
    texts = [
        "the plot was dull but the acting was superb",
        "the acting was superb but the plot was dull",
        "not good",
        "Le café était naïve, 日本語 and the plot!",
    ]
    m = sr.load(sentiment)
    vocab = Vocab.from_json(m.metadata["specc.vocab"])
    ids, lengths = pad_ids([vocab.encode(t) for t in texts])
    probs = m.probabilities_from(m.run(words=ids, lengths=lengths)["logits"])
    classes = probs.argmax(axis=1)
    cases.append(
        {
            "kind": "classify_text",
            "name": "sentiment_gru texts",
            "folder": str(sentiment),
            "texts": texts,
            "expected": {
                "ids": [vocab.encode(t) for t in texts],
                "classes": classes.tolist(),
                "labels": [m.labels[c] for c in classes],
                "probabilities": probs.tolist(),
            },
        }
    )
    alvinn = runs("alvinn")
    roads = np.load(alvinn / "data.npz")["x"][:8]
    cases.append(
        {
            "kind": "regress",
            "name": "alvinn steering",
            "folder": str(alvinn),
            "inputs": {"retina": _json_array(roads)},
            "expected": _json_array(sr.load(alvinn).predict(roads)),
        }
    )
    node_parity(tmp_path, cases)


@pytest.mark.slow
def test_language_models_in_node_write_what_python_writes(runs, tmp_path):
    cases = []
    for name, prompts in [
        ("char_lm", ["The ", "Café ", "日本", ""]),
        ("word_lm", ["the cat", "The CAFÉ was", ""]),
    ]:
        folder = runs(name)
        lm = sr.LanguageModel(folder)
        settings = [
            {"temperature": 0},
            {"temperature": 0.8, "seed": 0},
            {"temperature": 1.3, "top_k": 5, "seed": 11},
            {"temperature": 1.0, "top_p": 0.7, "seed": 3},
            {"temperature": 0.9, "top_k": 8, "top_p": 0.9, "seed": 12345678901},
        ]
        for prompt in prompts:
            for s in settings:
                options = {"maxTokens": 60, "temperature": s["temperature"]}
                options |= {"topK": s.get("top_k"), "topP": s.get("top_p"), "seed": s.get("seed")}
                want = lm.generate(
                    prompt, 60, s["temperature"], s.get("top_k"), s.get("top_p"), s.get("seed")
                )
                cases.append(
                    {
                        "kind": "generate",
                        "name": f"{name} {prompt!r} {s}",
                        "folder": str(folder),
                        "prompt": prompt,
                        "options": options,
                        "expected": want,
                    }
                )
        with pytest.raises(sr.InputError, match="not in this model's vocabulary") as err:
            lm.generate("Zürich ∑ unknown", 5)
        cases.append(
            {
                "kind": "generate_error",
                "name": f"{name} unknown token",
                "folder": str(folder),
                "prompt": "Zürich ∑ unknown",
                "options": {"maxTokens": 5},
                "expected": "not in this model's vocabulary",
            }
        )
        assert "not in this model's vocabulary" in str(err.value)
    node_parity(tmp_path, cases)


@pytest.mark.slow
def test_seq2seq_in_node_decodes_what_python_decodes(runs, tmp_path):
    cases = []
    rng = np.random.default_rng(5)
    sources = ["".join(map(str, rng.integers(0, 10, n))) for n in (5, 7, 9, 12, 6, 10, 11, 8)]
    methods = [
        {"method": "greedy"},
        {"method": "beam", "beam_size": 1},
        {"method": "beam", "beam_size": 3},
        {"method": "beam", "beam_size": 4, "length_penalty": 0.6},
        {"method": "beam", "beam_size": 5, "length_penalty": 1.0, "max_len": 6},
        {"method": "sample", "temperature": 0.9, "seed": 4},
        {"method": "sample", "temperature": 1.2, "top_k": 3, "seed": 9},
    ]
    js_names = {
        "beam_size": "beamSize",
        "length_penalty": "lengthPenalty",
        "top_k": "topK",
        "max_len": "maxLen",
    }
    for name in ("seq2seq_reverse", "transformer"):
        folder = runs(name)
        s2s = sr.Seq2Seq(folder)
        src = sources if name == "seq2seq_reverse" else [s[:10] for s in sources]
        for options in methods:
            cases.append(
                {
                    "kind": "translate",
                    "name": f"{name} {options}",
                    "folder": str(folder),
                    "sources": src,
                    "options": {js_names.get(k, k): v for k, v in options.items()},
                    "expected": s2s.translate(src, **options),
                }
            )
    folder = runs("captioning")
    from specc.compiler.datasets.shapes import generate

    images, _ = generate(6, 96)
    s2s = sr.Seq2Seq(folder)
    for options in methods[:4]:
        cases.append(
            {
                "kind": "caption",
                "name": f"captioning {options}",
                "folder": str(folder),
                "images": _json_array(images),
                "options": {js_names.get(k, k): v for k, v in options.items()},
                "expected": s2s.caption(images, **options),
            }
        )
    node_parity(tmp_path, cases)


@pytest.mark.slow
def test_autoencoder_and_gan_in_node_give_pythons_images(runs, tmp_path):
    vae = runs("vae_digits")
    ae = sr.Autoencoder(vae)
    z = np.random.default_rng(0).standard_normal((10, 2)).astype(np.float32)
    x = np.load(vae / "data.npz")["x"][:10]
    gan = runs("dcgan_digits")
    gen = sr.Generator(gan)
    zg = np.random.default_rng(1).standard_normal((6, gen.dim)).astype(np.float32)
    cases = [
        {
            "kind": "decode",
            "name": "vae decode",
            "folder": str(vae),
            "z": _json_array(z),
            "expected": _json_array(ae.decode(z)),
        },
        {
            "kind": "encode",
            "name": "vae encode",
            "folder": str(vae),
            "x": _json_array(x),
            "expected": _json_array(ae.encode(x)),
        },
        {
            "kind": "generator",
            "name": "dcgan",
            "folder": str(gan),
            "z": _json_array(zg),
            "expected": _json_array(gen.model(zg)),
        },
    ]
    node_parity(tmp_path, cases)


@pytest.mark.slow
def test_node_cli_prints_what_specc_prints(runs, tmp_path):
    """`node bin/specc-js.mjs` (the JS module and onnxruntime-node only) against the specc CLI."""
    x = tmp_path / "x.npy"
    np.save(x, np.load(runs("lenet5") / "data.npz")["x"][:20])
    t = tmp_path / "iris.npy"
    np.save(t, np.load(runs("tabular") / "data.npz")["x"][:20])
    roads = tmp_path / "roads.npy"
    np.save(roads, np.load(runs("alvinn") / "data.npz")["x"][:5].astype(np.float64))  # cast back
    commands = [
        ("predict", runs("lenet5"), "--input", x),
        ("predict", runs("tabular"), "--input", t),
        ("predict", runs("alvinn"), "--input", roads),
        ("sample", runs("char_lm"), "--prompt", "The ", "-n", "80", "-t", "0"),
        ("sample", runs("char_lm"), "--prompt", "Café", "-n", "50", "-t", "0.8", "--seed", "7"),
        ("sample", runs("word_lm"), "--prompt", "the cat", "-n", "20", "-t", "0"),
        (
            "translate",
            runs("seq2seq_reverse"),
            "--input",
            "12345",
            "--input",
            "908172",
            "--input",
            "5550001",
        ),
        (
            "translate",
            runs("seq2seq_reverse"),
            "--input",
            "12345",
            "--input",
            "90817263",
            "--beam",
            "4",
            "--length-penalty",
            "0.6",
        ),
    ]
    for command, folder, *args in commands:
        want = run_specc(command, folder, *args)
        got = node("bin/specc-js.mjs", command, folder, *args)
        assert want.returncode == 0, want.stderr
        assert got.returncode == 0, got.stderr
        assert got.stdout == want.stdout, (command, args)


# ------------------------------------------------------------------------------ the browser


@contextlib.contextmanager
def serve(folder: Path):
    """A static server for `folder` on loopback, stopped afterwards."""

    class Handler(http.server.SimpleHTTPRequestHandler):
        extensions_map = {
            **http.server.SimpleHTTPRequestHandler.extensions_map,
            ".mjs": "text/javascript",
            ".js": "text/javascript",
            ".wasm": "application/wasm",
        }

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(folder))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def shots_dir(tmp_path: Path) -> Path:
    """Screenshots go to $SPECC_SCREENSHOTS when set (to look at them), else next to the test."""
    folder = Path(os.environ.get("SPECC_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def browse(url: str, steps: list[dict]) -> list[dict]:
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"Chromium is not installed at {CHROMIUM}: make chromium (make test does it)")
    plan = json.dumps({"url": url, "steps": steps})
    if not (JS / "node_modules" / "playwright-core").is_dir():
        pytest.fail("runtime/js's packages are not installed: make js (make test does it)")
    proc = subprocess.run(
        [NODE, "test/browser.mjs"],
        cwd=JS,
        input=plan,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "SPECC_CHROMIUM": CHROMIUM},
    )
    result = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.stdout.strip() else {}
    assert proc.returncode == 0, (result.get("problems"), proc.stderr[-3000:])
    assert not result["problems"], result["problems"]
    return result["answers"]


def export_page(folder: Path, out: Path) -> Path:
    # from the checkout's root, which finds runtime/js/node_modules/onnxruntime-web by itself
    proc = run_specc("export", folder, "--web", out, cwd=REPO)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert {"index.html", "app.js", "style.css"} <= {p.name for p in out.iterdir()}
    assert (out / "ort" / "ort-wasm-simd-threaded.wasm").is_file()
    return out


def digit_png(raw: np.ndarray, path: Path) -> np.ndarray:
    """A 32x32 gray PNG of an 8x8 digit (dark ink on white, 4x4 pixels a count), and the ink
    counts a reader of that picture finds (what the page computes from it)."""
    from PIL import Image

    gray = np.round(255 - raw.reshape(8, 8) * 255 / 16).astype(np.uint8)
    big = gray.repeat(4, axis=0).repeat(4, axis=1)
    Image.fromarray(big, mode="L").save(path)
    ink = (255 - big.astype(np.float64)) / 255
    return ink.reshape(8, 4, 8, 4).sum(axis=(1, 3)).astype(np.float32)


@pytest.mark.slow
def test_web_pages_answer_what_python_answers(runs, tmp_path):
    """Each task's page, opened in headless Chromium from a loopback server: the answer read off
    the page equals the Python runtime's on the same input. Screenshots of every page."""
    import torch

    shots = shots_dir(tmp_path)
    pages = tmp_path / "pages"

    # an image classifier: a digit dropped as a PNG file
    lenet = runs("lenet5")
    png = tmp_path / "digit.png"
    counts = digit_png(_digits_raw(1)[0], png)
    x = torch.nn.functional.interpolate(
        torch.from_numpy(counts[None, None] / np.float32(16)),
        size=(28, 28),
        mode="bilinear",
        align_corners=False,
    ).numpy()
    want = sr.load(lenet).predict(x)
    with serve(export_page(lenet, pages / "lenet5")) as url:
        (got,) = browse(
            url,
            [
                {"wait": "ready"},
                {"upload": "#file", "file": str(png)},
                {"result": True},
                {"screenshot": str(shots / "lenet5.png")},
            ],
        )
    assert got["classes"] == want.classes.tolist() and got["labels"] == want.labels
    assert np.abs(np.array(got["input"]) - x.ravel()).max() <= 1e-6
    assert np.abs(np.array(got["probabilities"]) - want.probabilities).max() <= 1e-5
    # a 7 drawn with the mouse: the page's input (cropped, counted, scaled, resized) answers alike
    seven = [[[0.3, 0.25], [0.7, 0.25], [0.45, 0.8]]]
    with serve(pages / "lenet5") as url:
        (got,) = browse(
            url,
            [
                {"wait": "ready"},
                {"draw": "canvas.draw", "strokes": seven},
                {"result": True},
                {"screenshot": str(shots / "lenet5-drawn.png")},
            ],
        )
    want = sr.load(lenet).predict(np.array(got["input"], np.float32).reshape(1, 1, 28, 28))
    assert got["labels"] == want.labels
    assert np.abs(np.array(got["probabilities"]) - want.probabilities).max() <= 1e-5

    # a tabular classifier: a row typed into the table (raw values; the graph standardizes)
    tab = runs("tabular")
    row = {"petal_width": 1.8, "sepal_length": 6.3, "petal_length": 5.1, "sepal_width": 2.9}
    want = sr.load(tab).predict(np.array([list(row.values())], np.float32))
    steps = [{"wait": "ready"}] + [
        {"fill": f"input[data-column={c}]", "value": v} for c, v in row.items()
    ]
    with serve(export_page(tab, pages / "tabular")) as url:
        (got,) = browse(
            url,
            steps
            + [{"click": "#run"}, {"result": True}, {"screenshot": str(shots / "tabular.png")}],
        )
    assert got["labels"] == want.labels
    assert np.abs(np.array(got["probabilities"]) - want.probabilities).max() <= 1e-5

    # a text classifier: typed text
    sentiment = runs("sentiment_gru")
    text = "the acting was superb but the plot was dull"
    m = sr.load(sentiment)
    vocab = Vocab.from_json(m.metadata["specc.vocab"])
    ids, lengths = pad_ids([vocab.encode(text)])
    probs = m.probabilities_from(m.run(words=ids, lengths=lengths)["logits"])
    with serve(export_page(sentiment, pages / "sentiment")) as url:
        (got,) = browse(
            url,
            [
                {"wait": "ready"},
                {"fill": "#text", "value": text},
                {"click": "#run"},
                {"result": True},
                {"screenshot": str(shots / "sentiment_gru.png")},
            ],
        )
    assert got["labels"] == [m.labels[int(probs.argmax())]]
    assert np.abs(np.array(got["probabilities"]) - probs).max() <= 1e-5

    # a language model: a prompt at temperature 0, then sampled with a seed
    lm_folder = runs("char_lm")
    lm = sr.LanguageModel(lm_folder)
    with serve(export_page(lm_folder, pages / "char_lm")) as url:
        greedy, sampled = browse(
            url,
            [
                {"wait": "ready"},
                {"fill": "#prompt", "value": "Café "},
                {"range": "#temperature", "value": 0},
                {"fill": "#max-tokens", "value": 80},
                {"click": "#run"},
                {"result": True},
                {"screenshot": str(shots / "char_lm.png")},
                {"range": "#temperature", "value": 0.8},
                {"fill": "#seed", "value": 3},
                {"click": "#run"},
                {"result": True},
            ],
        )
    assert greedy["text"] == lm.generate("Café ", 80, 0.0)
    assert sampled["text"] == lm.generate("Café ", 80, 0.8, seed=3)

    # seq2seq: sources, greedy and beam search
    s2s_folder = runs("seq2seq_reverse")
    s2s = sr.Seq2Seq(s2s_folder)
    sources = ["12345", "9081726354", "5550001"]
    with serve(export_page(s2s_folder, pages / "seq2seq")) as url:
        greedy, beam = browse(
            url,
            [
                {"wait": "ready"},
                {"fill": "#sources", "value": "\n".join(sources)},
                {"click": "#run"},
                {"result": True},
                {"select": "#method", "value": "beam"},
                {"fill": "#beam-size", "value": 4},
                {"fill": "#length-penalty", "value": 0.6},
                {"click": "#run"},
                {"result": True},
                {"screenshot": str(shots / "seq2seq_reverse.png")},
            ],
        )
    assert greedy["outputs"] == s2s.translate(sources)
    assert beam["outputs"] == s2s.translate(sources, method="beam", beam_size=4, length_penalty=0.6)

    # captioning: an example picture from the data, clicked
    cap = runs("captioning")
    with serve(export_page(cap, pages / "captioning")) as url:
        (got,) = browse(
            url,
            [
                {"wait": "ready"},
                {"click": "canvas[data-example='2']"},
                {"result": True},
                {"screenshot": str(shots / "captioning.png")},
            ],
        )
    picture = np.array(got["input"], np.float32).reshape(1, 1, 24, 24)
    assert got["outputs"] == sr.Seq2Seq(cap).caption(picture)

    # a VAE: the sample grid, then a code typed in; images equal Python's decoding of the codes
    vae = runs("vae_digits")
    ae = sr.Autoencoder(vae)
    with serve(export_page(vae, pages / "vae")) as url:
        samples, decoded = browse(
            url,
            [
                {"wait": "ready"},
                {"current": True},
                {"fill": "#code", "value": "0.5, -1.25"},
                {"press": "#code", "key": "Enter"},
                {"result": True},
                {"screenshot": str(shots / "vae_digits.png")},
            ],
        )
    z = np.array(samples["z"], np.float32).reshape(-1, 2)
    assert len(z) == 64 and abs(z.mean()) < 0.3 and 0.6 < z.std() < 1.4  # N(0, I) draws
    assert np.abs(np.array(samples["images"]) - ae.decode(z).ravel()).max() <= 1e-5
    assert decoded["z"] == [0.5, -1.25]
    want = ae.decode(np.array([[0.5, -1.25]], np.float32))
    assert np.abs(np.array(decoded["image"]) - want.ravel()).max() <= 1e-5

    # a GAN: its sample grid
    gan = runs("dcgan_digits")
    gen = sr.Generator(gan)
    with serve(export_page(gan, pages / "gan")) as url:
        (samples,) = browse(
            url,
            [{"wait": "ready"}, {"current": True}, {"screenshot": str(shots / "dcgan_digits.png")}],
        )
    z = np.array(samples["z"], np.float32).reshape(64, gen.dim)
    assert np.abs(np.array(samples["images"]) - gen.model(z).ravel()).max() <= 1e-5


def test_export_web_says_where_to_get_onnxruntime_web(runs, tmp_path):
    proc = run_specc(
        "export",
        runs("tabular"),
        "--web",
        tmp_path / "page",
        "--onnxruntime-web",
        tmp_path / "nowhere",
    )
    assert proc.returncode == 1 and "npm install onnxruntime-web@1.30.0" in proc.stderr
    assert "Traceback" not in proc.stderr
