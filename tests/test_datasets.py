"""The data set registry: every registered set made small, checked against what it promises and,
where one exists, an oracle that does not share the generator's code; and the spec's errors for
names and generation keys that the registry does not know."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import run_specc

from specc.compiler import datasets
from specc.compiler.datasets import sentiment
from specc.compiler.diagnostics import SpecError
from specc.compiler.pipeline import compile_file
from specc.compiler.spec_data import BuiltinData, PairsData, TextData

SMALL = {"count": 40, "length": 8, "resize": (12, 10), "lengths": (2, 6)}
FIXED = {
    "digits",
    "iris",
    "wine",
    "breast_cancer",
    "xor",
    "one_hot",
    "digit_attributes",
}  # the same for every seed


def small(entry: datasets.DataSet, seed: int = 0) -> tuple:
    return entry(seed, **{k: v for k, v in SMALL.items() if k in entry.params})


def same(a, b) -> bool:
    """Equal outputs, arrays bit for bit (dtype and shape included)."""
    if isinstance(a, np.ndarray):
        return (
            isinstance(b, np.ndarray)
            and a.dtype == b.dtype
            and a.shape == b.shape
            and a.tobytes() == b.tobytes()
        )
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(same, a, b))
    return a == b


def test_the_registry_holds_the_documented_sets():
    assert datasets.names("builtin") == (
        "digits", "iris", "wine", "breast_cancer", "xor", "road", "adding", "one_hot",
        "digit_attributes",
    )  # fmt: skip
    assert datasets.names("text") == ("sentiment",)
    assert datasets.names("pairs") == ("reverse", "copy", "sort", "addition", "shapes")
    for entry in datasets.REGISTRY.values():
        assert entry.description and "\n" not in entry.description, entry.name
        with pytest.raises(AttributeError):
            entry.name = "other"  # frozen
    assert dict(datasets.get("adding", "builtin").params) == {"count": 3000, "length": 30}
    assert dict(datasets.get("road", "builtin").params) == {"count": 2000}
    assert dict(datasets.get("digits", "builtin").params) == {"resize": None}
    assert dict(datasets.get("digit_attributes", "builtin").params) == {"resize": None}
    assert dict(datasets.get("reverse", "pairs").params) == {
        "count": 4000,
        "lengths": (5, 12),
        "hold_out_lengths": (),
    }
    assert dict(datasets.get("shapes", "pairs").params) == {"count": 4000}
    assert datasets.accepting("count", "builtin") == ("road", "adding")


@pytest.mark.parametrize("name", list(datasets.REGISTRY))
def test_every_set_gives_what_its_kind_promises_and_is_deterministic(name):
    entry = datasets.REGISTRY[name]
    out = small(entry, seed=3)
    count = SMALL["count"] if "count" in entry.params else None
    if entry.kind == "builtin":
        x, y, labels = out
        assert isinstance(x, np.ndarray) and x.dtype == np.float32 and np.isfinite(x).all()
        assert isinstance(y, np.ndarray) and len(y) == len(x) > 0
        if labels is None:  # a regression target
            assert y.dtype == np.float32 and y.shape == (len(x), 1)
        elif y.ndim == 2:  # multi-hot: one yes/no column per label, each both yes and no somewhere
            assert y.shape == (len(x), len(labels)) and set(np.unique(y)) == {0.0, 1.0}
            assert (y.max(axis=0) == 1).all() and (y.min(axis=0) == 0).all()
        else:
            assert y.dtype.kind == "i" and all(isinstance(v, str) for v in labels)
            assert set(np.unique(y)) == set(range(len(labels)))  # every class present, no other
        if count is not None:
            assert len(x) == count
    elif entry.kind == "text":
        texts, labels, classes = out
        assert len(texts) == len(labels) == count and all(t.strip() for t in texts)
        assert set(labels) == set(classes)
    else:
        sources, targets = out
        assert len(sources) == len(targets) == count and all(targets)
        if isinstance(sources, np.ndarray):
            assert sources.dtype == np.float32 and sources.ndim == 4 and sources.shape[1] == 1
        else:
            assert len(set(sources)) == len(sources)  # distinct
    assert same(out, small(entry, seed=3))
    if name not in FIXED:
        assert not same(out, small(entry, seed=4))


def test_none_takes_the_default_and_unknown_parameters_are_refused():
    entry = datasets.get("adding", "builtin")
    x, _, _ = entry(0, count=None, length=None)
    assert x.shape == (3000, 30, 2)
    with pytest.raises(TypeError, match="takes no parameter 'resize'"):
        entry(0, resize=(2, 2))


def test_adding_targets_are_the_sums_of_the_marked_values():
    x, y, _ = datasets.get("adding", "builtin")(5, count=300, length=10)
    marks = x[:, :, 1]
    assert set(np.unique(marks)) == {0.0, 1.0}
    assert (marks[:, :5].sum(axis=1) == 1).all() and (marks[:, 5:].sum(axis=1) == 1).all()
    for row, target in zip(x, y[:, 0], strict=True):
        marked = [float(value) for value, mark in row if mark == 1]
        assert len(marked) == 2 and target == pytest.approx(sum(marked), rel=1e-6)


def test_road_steering_stays_in_range():
    x, y, _ = datasets.get("road", "builtin")(1, count=100)
    assert x.shape == (100, 1, 30, 32) and 0 <= x.min() and x.max() <= 1
    assert -1 <= y.min() and y.max() <= 1


def test_xor_is_the_truth_table():
    x, y, labels = datasets.get("xor", "builtin")(0)
    assert [(int(a), int(b)) for a, b in x] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert [labels[c] for c in y] == [str(int(a) ^ int(b)) for a, b in x]


def test_one_hot_patterns_are_their_own_labels():
    x, y, labels = datasets.get("one_hot", "builtin")(0)
    assert np.array_equal(x, np.eye(8)) and np.array_equal(x.argmax(axis=1), y)
    assert labels == [str(i) for i in range(8)]


def test_scikit_learn_sets_are_the_bundled_files():
    import sklearn.datasets as skd

    x, y, labels = datasets.get("digits", "builtin")(0)
    bunch = skd.load_digits()
    assert np.array_equal(x[:, 0], (bunch.images / 16).astype(np.float32)) and x.shape[1] == 1
    assert np.array_equal(y, bunch.target) and labels == [str(n) for n in range(10)]
    # read from load_digits' own file without importing scikit-learn (2 s of every training)
    import subprocess
    import sys

    quiet = "from specc.compiler import datasets; import sys; datasets.get('digits', 'builtin')(0)"
    probe = f"{quiet}; print('sklearn' in sys.modules)"
    assert (
        subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout
        == "False\n"
    )
    big, _, _ = datasets.get("digits", "builtin")(0, resize=(16, 16))
    assert big.shape == (len(x), 1, 16, 16)
    assert np.allclose(big.mean(axis=(2, 3)), x.mean(axis=(2, 3)), atol=0.02)  # same ink
    for name in ("iris", "wine", "breast_cancer"):
        x, y, labels = datasets.get(name, "builtin")(0)
        bunch = getattr(skd, f"load_{name}")()
        assert np.array_equal(x, bunch.data.astype(np.float32))
        assert np.array_equal(y, bunch.target) and labels == list(map(str, bunch.target_names))


@pytest.mark.parametrize("name", ["reverse", "copy", "sort", "addition"])
def test_digit_pairs_are_what_their_names_say(name):
    sources, targets = datasets.get(name, "pairs")(
        2, count=300, lengths=(2, 6), hold_out_lengths=[4]
    )
    for source, target in zip(sources, targets, strict=True):
        if name == "addition":
            a, b = source.split("+")
            assert int(target) == int(a) + int(b) and target == str(int(target))
            assert 1 <= len(a) <= 6 and 1 <= len(b) <= 6  # at most that many digits
            continue
        assert source.isdigit() and len(source) in (2, 3, 5, 6)
        want = {"reverse": source[::-1], "copy": source, "sort": "".join(sorted(source))}
        assert target == want[name]


def test_holding_out_every_length_is_refused():
    from specc.compiler.diagnostics import DataProblem

    with pytest.raises(DataProblem, match="every length in the range is held out"):
        datasets.get("copy", "pairs")(0, lengths=(3, 4), hold_out_lengths=(3, 4))


def test_shapes_are_drawn_where_their_captions_say():
    """Independent of the drawing code: the bright pixels' centre lies on the captioned side,
    and a big shape covers more pixels than a small one."""
    images, captions = datasets.get("shapes", "pairs")(7, count=200)
    assert images.shape == (200, 1, 24, 24)
    ink = {"small": [], "big": []}
    for image, caption in zip(images[:, 0], captions, strict=True):
        size, shape, on, the, place = caption.split()
        assert (on, the) == ("on", "the") and shape in ("circle", "square", "triangle", "cross")
        rows, cols = np.nonzero(image > 0.5)
        row, col = rows.mean(), cols.mean()
        side = {"left": col < 11, "right": col > 12, "top": row < 11, "bottom": row > 12}
        assert side[place], (caption, row, col)
        ink[size].append(len(rows))
    assert max(ink["small"]) < min(ink["big"])


def test_sentiment_labels_follow_the_last_clause():
    """The label is the last clause's adjective's polarity, flipped by a 'not' in that clause."""
    texts, labels, classes = datasets.get("sentiment", "text")(1, count=300)
    assert classes == ["negative", "positive"]
    for text, label in zip(texts, labels, strict=True):
        last = text.split(" but ")[-1].split()
        positive = last[-1] in sentiment.POSITIVE
        assert positive or last[-1] in sentiment.NEGATIVE
        assert label == ("positive" if positive != ("not" in last) else "negative"), text
    assert 0.3 < labels.count("positive") / len(labels) < 0.7


def test_schema_enumerations_come_from_the_registry():
    def allowed(model, field):
        prop = model.model_json_schema()["properties"][field]
        options = prop.get("anyOf", [prop])[0]
        return tuple(options.get("enum", [options.get("const")]))

    assert allowed(BuiltinData, "name") == datasets.names("builtin")
    assert allowed(TextData, "generate") == datasets.names("text")
    assert allowed(PairsData, "generate") == datasets.names("pairs")
    described = BuiltinData.model_fields["name"].description
    assert all(e.description in described for e in datasets.entries("builtin"))


SPEC = """\
specc: 1
name: t
task: classification
inputs: {{x: {{shape: [64]}}}}
model: [{{type: linear, out_features: 10}}]
{data}
"""


def located(tmp_path, data):
    path = tmp_path / "t.yaml"
    path.write_text(SPEC.format(data=data))
    with pytest.raises(SpecError) as e:
        compile_file(path)
    (d,) = e.value.diagnostics
    assert d.pos is not None and d.path == str(path), d
    return d, path


@pytest.mark.parametrize(
    "data,col,kind,hint",
    [
        ("data: {type: builtin, name: digitz}", 29, "builtin", "did you mean 'digits'?"),
        ("data: digitz", 7, "builtin", "did you mean 'digits'?"),
        ("data: {type: text, generate: sentimnt}", 30, "text", "did you mean 'sentiment'?"),
        ("data: {type: pairs, generate: revers}", 31, "pairs", "did you mean 'reverse'?"),
        ("data: {type: pairs, generate: zzz}", 31, "pairs", None),
        (
            "data: {type: builtin, name: reverse}",
            29,
            "builtin",
            "'reverse' is a pair set: data: {type: pairs, generate: reverse}",
        ),
    ],
)
def test_unknown_names_are_located_and_list_what_exists(tmp_path, data, col, kind, hint):
    d, _ = located(tmp_path, data)
    assert (d.pos.line, d.pos.col) == (6, col)
    assert f"there are: {', '.join(datasets.names(kind))}" in d.message
    if hint:
        assert hint in d.message
    else:
        assert "did you mean" not in d.message


@pytest.mark.parametrize(
    "data,key,message",
    [
        ("{type: builtin, name: digits, count: 5}", "count", "count applies to road and adding, not digits"),
        ("{type: builtin, name: road, length: 5}", "length", "length applies to adding, not road"),
        ("{type: builtin, name: iris, resize: [4, 4]}", "resize", "resize applies to digits and digit_attributes, not iris"),
        ("{type: pairs, generate: shapes, lengths: [2, 3]}", "lengths", "lengths applies to reverse, copy, sort and addition, not shapes"),
        ("{type: pairs, generate: shapes, hold_out_lengths: [2]}", "hold_out_lengths", "not shapes"),
    ],
)  # fmt: skip
def test_generation_keys_apply_only_to_the_sets_that_take_them(tmp_path, data, key, message):
    d, _ = located(tmp_path, f"data: {data}")
    value = len("data: ") + data.index(f"{key}: ") + len(f"{key}: ") + 1
    assert (d.pos.line, d.pos.col) == (6, value)  # at the value given
    assert message in d.message


def test_sets_that_take_a_key_accept_it():
    for model, data in (
        (BuiltinData, {"type": "builtin", "name": "adding", "count": 5, "length": 4}),
        (BuiltinData, {"type": "builtin", "name": "digits", "resize": [4, 16]}),
        (PairsData, {"type": "pairs", "generate": "reverse", "count": 5, "lengths": [2, 3], "hold_out_lengths": [2]}),
        (PairsData, {"type": "pairs", "generate": "shapes", "count": 5}),
        (TextData, {"type": "text", "generate": "sentiment", "count": 5}),
    ):  # fmt: skip
        model.model_validate(data)


def test_specc_check_prints_the_unknown_name_error(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(SPEC.format(data="data: {type: builtin, name: digitz}"))
    proc = run_specc("check", path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"{path}:6:29: error: invalid 'name': unknown built-in data set 'digitz'" in proc.stderr
    assert "did you mean 'digits'?" in proc.stderr


def test_digit_attributes_are_each_digits_even_greater_than_4_and_prime_labels():
    from sklearn.datasets import load_digits

    x, y, labels = datasets.get("digit_attributes", "builtin")(0)
    digit = load_digits().target
    assert labels == ["even", "greater_than_4", "prime"]
    assert (y[:, 0] == (digit % 2 == 0)).all()
    assert (y[:, 1] == (digit > 4)).all()
    assert (y[:, 2] == np.isin(digit, [2, 3, 5, 7])).all()
    assert np.array_equal(x, datasets.get("digits", "builtin")(0)[0])  # the same pictures
