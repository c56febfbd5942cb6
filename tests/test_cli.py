"""Every command as a user meets it: what each takes, what it prints, and that evaluate and
predict reach every task. Oracles: report.json (train.py's own scores, computed in torch), the
run's own splits rewritten as the files a user would have, torch's interpolate, and PyTorch."""

from __future__ import annotations

import csv
import json
import os
import re
import stat

import numpy as np
import pytest
import torch
from helpers import SPECS, run_specc
from PIL import Image

import specc.runtime as sr
from specc.compiler import datasets
from specc.compiler import export as ex
from specc.compiler.spec_data import DATA_KINDS

# ----------------------------------------------------------------------------- fast: no training


def test_version_completion_and_usage_lines():
    proc = run_specc("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("specc ")
    # The shell is named, not detected from the process tree (which under pytest may hold none).
    no_detection = {"_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}
    proc = run_specc("--show-completion", "bash", env=no_detection)
    assert proc.returncode == 0 and "_SPECC_COMPLETE" in proc.stdout
    proc = run_specc("check", "--help")
    assert "Usage: specc check [OPTIONS] SPEC" in proc.stdout and "{spec}" not in proc.stdout
    proc = run_specc("evaluate")
    assert proc.returncode == 2 and "Usage: specc evaluate [OPTIONS] DIR" in proc.stderr
    proc = run_specc("translate", "--help")
    assert "--sample: divide the logits" in proc.stdout and "k likeliest" in proc.stdout


def test_generated_files_are_readable_by_others(tmp_path):
    old = os.umask(0o022)
    try:
        proc = run_specc("build", SPECS / "xor.yaml", "-o", tmp_path / "b", "--no-verify")
    finally:
        os.umask(old)
    assert proc.returncode == 0, proc.stderr
    for name in ("model.py", "train.py", "spec.json"):
        assert stat.S_IMODE((tmp_path / "b" / name).stat().st_mode) == 0o644, name


def test_a_relative_run_folder_lists_its_files_by_their_names_inside_it(tmp_path):
    proc = run_specc("build", SPECS / "xor.yaml", "-o", "b", "--no-verify", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert sorted(manifest["files"]) == ["model.py", "spec.json", "train.py"]


def test_print_spec_is_the_resolved_spec_and_compiles_to_the_same_model(tmp_path):
    proc = run_specc(
        "check", SPECS / "dcgan_digits.yaml", "--print-spec", "--set", "train.epochs=3"
    )
    assert proc.returncode == 0, proc.stderr
    assert "total parameters" not in proc.stdout  # it prints the spec and stops
    printed = tmp_path / "printed.yaml"
    printed.write_text(proc.stdout, encoding="utf-8")
    assert "epochs: 3" in proc.stdout
    built = [
        run_specc(
            "build",
            SPECS / "dcgan_digits.yaml",
            "-o",
            tmp_path / "a",
            "--no-verify",
            "--set",
            "train.epochs=3",
        ),
        run_specc("build", printed, "-o", tmp_path / "b", "--no-verify"),
    ]
    assert all(p.returncode == 0 for p in built), [p.stderr for p in built]
    spec_json = json.loads((tmp_path / "a" / "spec.json").read_text())["spec"]
    import yaml

    assert yaml.safe_load(proc.stdout) == spec_json
    for name in ("model.py", "train.py"):
        a, b = ((tmp_path / d / name).read_text().splitlines() for d in "ab")
        keep = lambda lines: [x for x in lines if "sha256" not in x.lower() and "Source:" not in x]  # noqa: E731
        assert keep(a) == keep(b), name
    for command in ("build", "train"):
        proc = run_specc(command, SPECS / "xor.yaml", "--print-spec", "-o", tmp_path / command)
        assert proc.returncode == 0 and "task: classification" in proc.stdout
        assert not (tmp_path / command).exists()  # nothing built or trained


def test_export_asks_what_to_export(tmp_path):
    proc = run_specc("export", tmp_path)
    said = " ".join(re.sub("[│╭╮╰╯─]", " ", proc.stderr).split())  # rich's box, unwrapped
    assert proc.returncode == 2 and "--quantize int8" in said and "--web OUT" in said


def test_a_diverged_run_has_its_own_exit_code(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(160, 8)).astype(np.float32)
    np.savez(tmp_path / "d.npz", x=x, y=(x @ rng.normal(size=8)).astype(np.float32))
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "specc: 1\nname: t\ntask: regression\ninputs: {x: {shape: [8]}}\n"
        "model: [{type: linear, out_features: 16}, tanh, {type: linear, out_features: 1}]\n"
        "data: {type: npz, path: d.npz, val_split: 0.0}\n"
        "train: {epochs: 6, batch_size: 16, optimizer: {type: sgd, lr: 200}, log_every_steps: 0}\n"
    )
    proc = run_specc("train", spec, "-o", tmp_path / "run", "--quiet")
    assert proc.returncode == 4, (proc.returncode, proc.stderr)  # 2 is a usage error
    assert "loss became" in proc.stderr and "Traceback" not in proc.stderr


def test_bilinear_is_torchs_interpolate():
    from specc.compiler.inputs import bilinear

    rng = np.random.default_rng(0)
    for size, to in (((8, 8), (28, 28)), ((8, 8), (16, 16)), ((5, 7), (3, 11)), ((8, 8), (8, 8))):
        x = rng.random((2, *size)).astype(np.float32)
        want = torch.nn.functional.interpolate(
            torch.from_numpy(x)[None], size=to, mode="bilinear", align_corners=False
        )[0].numpy()
        np.testing.assert_allclose(bilinear(x, *to), want, atol=1e-6)


# ----------------------------------------------------------------------------- trained runs

TINY = {
    "digits": """
specc: 1
name: tiny digits
task: classification
inputs: {image: {shape: [1, 16, 16]}}
model:
  - {type: conv2d, out_channels: 8, kernel_size: 3, padding: 1}
  - relu
  - {type: maxpool2d, kernel_size: 2}
  - flatten
  - {type: linear, out_features: 10}
data: {type: builtin, name: digits, resize: [16, 16], test_split: 0.1}
train: {epochs: 3, batch_size: 32, optimizer: {type: adam, lr: 0.01}}
""",
    "iris": """
specc: 1
name: tiny iris
task: classification
inputs: {x: {shape: [4]}}
model:
  - {type: linear, out_features: 16}
  - relu
  - {type: linear, out_features: 3}
data: {type: csv, path: iris.csv, label: species, standardize: true}
train: {epochs: 30, batch_size: 16, optimizer: {type: adam, lr: 0.02}}
""",
    "lm": """
specc: 1
name: tiny lm
task: language_model
inputs: {tokens: {shape: [time], dtype: int64}}
model:
  - {type: embedding, num_embeddings: vocab, embedding_dim: 16}
  - {type: gru, hidden_size: 32}
  - {type: linear, out_features: vocab}
data: {type: text, text: TEXT, level: char, seq_len: 24, val_split: 0.2}
train: {epochs: 3, batch_size: 8, optimizer: {type: adam, lr: 0.01}}
""",
}
CORPUS = "The cat sat on the mat. The dog ate the cat's dinner, and the cat was cross. " * 20
EXAMPLES = {  # spec, --set values that make it quick
    "sentiment": ("sentiment_gru.yaml", ["data.count=600", "train.epochs=4"]),
    "reverse": ("seq2seq_reverse.yaml", ["data.count=1000", "train.epochs=2"]),
    "captions": ("captioning_toy.yaml", ["data.count=400", "train.epochs=1"]),
    "vae": ("vae_digits.yaml", ["train.epochs=2"]),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """name -> a trained run folder (trained on first use, once for the module)."""
    made: dict = {}
    base = tmp_path_factory.mktemp("cli-runs")

    def get(name: str):
        if name in made:
            return made[name]
        out = base / name
        if name in EXAMPLES:
            spec, sets = EXAMPLES[name]
            args = [SPECS / spec, *(a for s in sets for a in ("--set", s))]
        else:
            spec = base / f"{name}.yaml"
            spec.write_text(TINY[name].replace("TEXT", json.dumps(CORPUS)), encoding="utf-8")
            if name == "iris":
                _iris_csv(base / "iris.csv")
            args = [spec]
        proc = run_specc("train", *args, "-o", out, "--quiet")
        # a missed train.target still exports everything; these runs only need the graphs
        assert (out / "report.json").is_file(), proc.stderr + proc.stdout
        made[name] = out
        return out

    return get


def _iris_csv(path, columns=None):
    from sklearn.datasets import load_iris

    iris = load_iris()
    names = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    order = columns or [*names, "species"]
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(order)
        for row, target in zip(iris.data, iris.target, strict=True):
            values = dict(zip(names, (f"{v:g}" for v in row), strict=True))
            values["species"] = str(iris.target_names[target])
            w.writerow([values[c] for c in order])
    return iris


def _report(run, split: str) -> dict:
    metrics = json.loads((run / "report.json").read_text())["metrics"]
    return {k[len(split) + 1 :]: v for k, v in metrics.items() if k.startswith(split + "_")}


def _evaluate(run, *args) -> dict:
    proc = run_specc("evaluate", run, "--json", *args)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _split_rows(run, split: str) -> np.ndarray:
    with np.load(run / "splits.npz") as s:
        return s[split]


def _spec(run) -> dict:
    return json.loads((run / "spec.json").read_text())["spec"]


@pytest.mark.slow
def test_text_classifier_from_the_cli(runs, tmp_path):
    """sentiment_gru (two inputs: words and lengths) through evaluate and predict: its own test
    split rewritten as .jsonl / .csv scores exactly as the split does, and text lines, .npz and
    NAME=FILE give the same predictions as the runtime on data.npz."""
    run = runs("sentiment")
    split = _evaluate(run, "--data", "test")
    report = _report(run, "test")
    assert split["metrics"]["loss"] == pytest.approx(report["loss"], rel=1e-4)
    assert split["metrics"]["accuracy"] == pytest.approx(report["accuracy"], abs=1e-9)
    data = DATA_KINDS["text"].model_validate(_spec(run)["data"])
    texts, labels, _ = datasets.get("sentiment", "text").from_section(data, 0)
    rows = _split_rows(run, "test")
    with open(tmp_path / "t.jsonl", "w", encoding="utf-8") as f:
        for i in rows:
            f.write(json.dumps({"label": labels[i], "text": texts[i]}) + "\n")
    with open(tmp_path / "t.csv", "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["text", "label"], *([texts[i], labels[i]] for i in rows)])
    for file in ("t.jsonl", "t.csv"):
        got = _evaluate(run, "--data", tmp_path / file)
        assert got["metrics"] == pytest.approx(split["metrics"], rel=1e-6), file
        assert got["confusion_matrix"] == split["confusion_matrix"]
    # predict: lines of text, a .npz by input name, NAME=FILE
    with np.load(run / "data.npz") as f:
        words, lengths = f["x"][rows[:5]], f["x1"][rows[:5]]
    model = sr.load(run)
    want = model.predictions_from(model.run(words=words, lengths=lengths)["logits"]).rows()
    (tmp_path / "t.txt").write_text("\n".join(texts[i] for i in rows[:5]) + "\n")
    np.savez(tmp_path / "t.npz", words=words, lengths=lengths)
    np.save(tmp_path / "w.npy", words)
    np.save(tmp_path / "l.npy", lengths)
    for args in (
        ["-i", tmp_path / "t.txt"],
        ["-i", tmp_path / "t.npz"],
        ["-i", f"words={tmp_path / 'w.npy'}", "-i", f"lengths={tmp_path / 'l.npy'}"],
    ):
        proc = run_specc("predict", run, *args, "--json")
        assert proc.returncode == 0, proc.stderr
        got = json.loads(proc.stdout)
        assert [r["label"] for r in got] == [r["label"] for r in want], args
        assert [r["label"] for r in got] == [labels[i] for i in rows[:5]]  # and they are right
    proc = run_specc("predict", run, "-i", tmp_path / "w.npy")
    assert proc.returncode == 1 and "NAME=FILE" in proc.stderr


@pytest.mark.slow
def test_language_model_on_a_text_file(runs, tmp_path):
    run = runs("lm")
    val = _evaluate(run, "--data", "val")["metrics"]
    report = _report(run, "val")
    assert val["loss"] == pytest.approx(report["loss"], rel=1e-4)
    assert val["accuracy"] == pytest.approx(report["accuracy"], abs=1e-6)
    assert val["perplexity"] == pytest.approx(np.exp(val["loss"]), rel=1e-9)
    text = "The dog sat on the cat. The mat was cross, and the dog ate."
    (tmp_path / "new.txt").write_text(text, encoding="utf-8")
    got = _evaluate(run, "--data", tmp_path / "new.txt")
    # the oracle: the trained PyTorch model, windows built here, torch's cross-entropy
    vocab = sr.LanguageModel(run).vocab
    index = vocab.index()
    ids = [2, *(index.get(c, 1) for c in text), 3]
    seq = _spec(run)["data"]["seq_len"]
    model = ex.instantiate(run, run / json.loads((run / "report.json").read_text())["weights"])
    losses, counts = [], []
    with torch.no_grad():
        for start in range(0, len(ids) - 1, seq):
            window = torch.tensor(ids[start : start + seq + 1])
            logits = model(window[None, :-1])[0]
            losses.append(torch.nn.functional.cross_entropy(logits, window[1:], reduction="sum"))
            counts.append(len(window) - 1)
    want = float(sum(losses) / sum(counts))
    assert got["metrics"]["loss"] == pytest.approx(want, rel=1e-4)
    assert got["examples"] == -(-(len(ids) - 1) // seq)


@pytest.mark.slow
def test_seq2seq_on_pairs_greedy_and_beam(runs, tmp_path):
    run = runs("reverse")
    split = _evaluate(run, "--data", "test")["metrics"]
    report = _report(run, "test")
    assert split["loss"] == pytest.approx(report["loss"], rel=1e-3)
    assert split["accuracy"] == pytest.approx(report["accuracy"], abs=1e-6)
    assert split["exact"] == pytest.approx(report["exact"], abs=1e-9)
    # teacher-forced exact match is greedy decoding's exact match
    assert split["greedy_exact"] == pytest.approx(split["exact"], abs=1e-9)
    data = DATA_KINDS["pairs"].model_validate(_spec(run)["data"])
    sources, targets = datasets.get("reverse", "pairs").from_section(data, 0)
    rows = _split_rows(run, "test")
    (tmp_path / "p.tsv").write_text("".join(f"{sources[i]}\t{targets[i]}\n" for i in rows))
    got = _evaluate(run, "--data", tmp_path / "p.tsv")["metrics"]
    assert got == pytest.approx(split, rel=1e-6)
    beam = _evaluate(run, "--data", tmp_path / "p.tsv", "--beam", "3")["metrics"]
    decoded = sr.Seq2Seq(run).translate([sources[i] for i in rows], method="beam", beam_size=3)
    want = np.mean([d == targets[i] for d, i in zip(decoded, rows, strict=True)])
    assert beam["beam3_exact"] == pytest.approx(want, abs=1e-9)


@pytest.mark.slow
def test_captioning_from_the_cli(runs, tmp_path):
    run = runs("captions")
    from specc.compiler.datasets.shapes import generate

    pictures, captions = generate(4, seed=7)
    for k, picture in enumerate(pictures):
        pixels = (np.clip(picture[0], 0, 1) * 255).round().astype(np.uint8)
        Image.fromarray(pixels).save(tmp_path / f"{k}.png")
    proc = run_specc("translate", run, "--image", tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    quantized = (np.clip(pictures, 0, 1) * 255).round() / 255
    want = sr.Seq2Seq(run).caption(quantized.astype(np.float32))
    assert [line.split("\t")[1] for line in lines] == want
    assert [line.split("\t")[0] for line in lines] == [str(tmp_path / f"{k}.png") for k in range(4)]
    proc = run_specc("translate", run, "--input", "big circle")
    assert proc.returncode == 1 and "--image" in proc.stderr
    proc = run_specc("sample", run)
    assert proc.returncode == 1 and f"specc translate {run} --image" in proc.stderr
    assert "test split" in _evaluate(run)["data"]


@pytest.mark.slow
def test_vae_evaluate_and_sample(runs, tmp_path):
    run = runs("vae")
    val = _evaluate(run, "--data", "val")["metrics"]
    report = _report(run, "val")
    for key in ("loss", "mse", "recon", "kl", "elbo"):
        assert val[key] == pytest.approx(report[key], rel=1e-4), key
    with np.load(run / "data.npz") as f:
        np.save(tmp_path / "x.npy", f["x"][_split_rows(run, "val")])
    assert _evaluate(run, "--data", tmp_path / "x.npy")["metrics"] == pytest.approx(val, rel=1e-6)
    proc = run_specc("sample", run, "--seed", "1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "samples.png").exists()  # not into the current folder
    with Image.open(run / "samples.png") as img:  # 64 8x8 tiles, 8 per row, x8: 584 pixels
        assert img.size == (8 * (8 * 9 + 1),) * 2
    proc = run_specc("sample", run, "--prompt", "a")
    assert proc.returncode == 1 and "--prompt applies to language models" in proc.stderr
    sheets = sorted((run / "samples").glob("epoch_*.png"))
    assert [p.name for p in sheets] == ["epoch_001.png", "epoch_002.png"]
    manifest = json.loads((run / "manifest.json").read_text())
    assert "samples.png" in manifest["files"]  # --overwrite removes it with the run


@pytest.mark.slow
def test_pictures_and_rows_are_prepared_as_the_data_stage_did(runs, tmp_path):
    """An 8x8 PNG of a digit is read as the digits set's counts / 16 resized to 16x16 (the run's
    data.npz holds the same pictures); CSV rows come by column name, in any order."""
    from sklearn.datasets import load_digits

    from specc.compiler.inputs import read_image

    run = runs("digits")
    digits = load_digits()
    folder = tmp_path / "pictures" / "some"
    folder.mkdir(parents=True)
    for k in range(6):
        pixels = np.round(digits.images[k] * 255 / 16).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{k}.png")
    model = sr.load(run)
    with np.load(run / "data.npz") as f:
        x = f["x"][:6]  # the data stage keeps the data set's order
    read = np.stack([read_image(folder / f"{k}.png", model, "image") for k in range(6)])
    np.testing.assert_allclose(read, x, atol=0.5 / 255 + 1e-6)  # PNG keeps 8 bits
    proc = run_specc("predict", run, "-i", tmp_path / "pictures", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert [r["input"] for r in rows] == [f"some/{k}.png" for k in range(6)]
    probabilities = model.probabilities(x)
    for r, p in zip(rows, probabilities, strict=True):
        assert r["probability"] == pytest.approx(p.max(), abs=2e-3)
    proc = run_specc("predict", run, "-i", folder / "3.png")
    assert proc.returncode == 0 and proc.stdout.startswith("3.png\t")
    # rows of a CSV: the run's columns by name (here in another order, with the label)
    iris_run = runs("iris")
    iris = _iris_csv(
        tmp_path / "shuffled.csv",
        ["species", "petal_width", "sepal_length", "petal_length", "sepal_width"],
    )
    proc = run_specc("predict", iris_run, "-i", tmp_path / "shuffled.csv", "--json")
    assert proc.returncode == 0, proc.stderr
    want = sr.load(iris_run).predict(iris.data.astype(np.float32)).classes.tolist()
    assert [r["class"] for r in json.loads(proc.stdout)] == want
    # and evaluate reads the run's columns by name too: the same scores in either order
    scored = []
    for csv_file in (iris_run.parent / "iris.csv", tmp_path / "shuffled.csv"):
        proc = run_specc("evaluate", iris_run, "--data", csv_file, "--json")
        assert proc.returncode == 0, proc.stderr
        scored.append(json.loads(proc.stdout))
    assert scored[0]["metrics"] == scored[1]["metrics"]
    assert scored[1]["metrics"]["accuracy"] == pytest.approx(np.mean(np.array(want) == iris.target))
