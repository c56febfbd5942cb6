"""Bad input: each mistake gives located `path:line:col: error:` lines, exit 1, no traceback."""

import pytest
from helpers import errors_of, run_specc

HEAD = "specc: 1\nname: t\ntask: classification\ninputs:\n  image: {shape: [1, 8, 8]}\n"


def check(write_spec, text, name="spec.yaml"):
    path = write_spec(text, name)
    return errors_of(run_specc("check", path)), path


def test_unknown_layer_type_is_located_with_suggestion(write_spec):
    errs, path = check(
        write_spec, HEAD + "model:\n  - flatten\n  - {type: lineer, out_features: 3}\n"
    )
    (e,) = errs
    assert (e["line"], e["col"]) == ("8", "12")
    assert "unknown layer type 'lineer'" in e["msg"]
    assert e["path"] == str(path)
    proc = run_specc("check", path)
    assert "did you mean 'linear'?" in proc.stderr


def test_misspelled_key_points_at_the_key(write_spec):
    text = HEAD + "model:\n  - type: conv2d\n    out_channels: 4\n    kernal_size: 3\n"
    path = write_spec(text)
    proc = run_specc("check", path)
    errs = errors_of(proc)
    assert {(e["line"], e["col"]) for e in errs} >= {("9", "5")}
    assert any("unknown key 'kernal_size'" in e["msg"] for e in errs)
    assert "did you mean 'kernel_size'?" in proc.stderr
    assert any(
        "missing required key 'kernel_size'" in e["msg"] for e in errs
    )  # all problems at once


def test_wrong_value_type(write_spec):
    errs, _ = check(
        write_spec, HEAD + "model:\n  - flatten\n  - {type: linear, out_features: many}\n"
    )
    (e,) = errs
    assert e["line"] == "8" and "out_features" in e["msg"] and "integer" in e["msg"]


@pytest.mark.parametrize("field,value", [("out_features", "-3"), ("out_features", "0")])
def test_negative_or_zero_sizes(write_spec, field, value):
    errs, _ = check(
        write_spec, HEAD + f"model:\n  - flatten\n  - {{type: linear, {field}: {value}}}\n"
    )
    assert errs[0]["line"] == "8" and "greater than 0" in errs[0]["msg"]


def test_negative_kernel_is_a_shape_error(write_spec):
    errs, _ = check(
        write_spec, HEAD + "model:\n  - {type: conv2d, out_channels: 2, kernel_size: 12}\n"
    )
    assert "too small" in errs[0]["msg"] and errs[0]["line"] == "7"


def test_from_naming_nothing(write_spec):
    text = (
        HEAD
        + "model:\n  - {type: conv2d, name: c1, out_channels: 2, kernel_size: 3}\n  - {type: add, from: [c1, c2]}\n"
    )
    path = write_spec(text)
    proc = run_specc("check", path)
    (e,) = errors_of(proc)
    assert e["line"] == "8" and "'from: c2' names no layer or input" in e["msg"]
    assert "did you mean 'c1'?" in proc.stderr


def test_cycle(write_spec):
    text = HEAD + (
        "model:\n"
        "  - {type: conv2d, name: a, out_channels: 1, kernel_size: 1, from: b}\n"
        "  - {type: relu, name: b, from: a}\n"
    )
    (e,) = check(write_spec, text)[0]
    assert "cycle" in e["msg"] and "a -> b -> a" in e["msg"].replace("b -> a -> b", "a -> b -> a")


def test_shape_mismatch_linear_after_conv_without_flatten(write_spec):
    text = (
        HEAD
        + "model:\n  - {type: conv2d, out_channels: 4, kernel_size: 3}\n  - {type: linear, out_features: 10}\n"
    )
    path = write_spec(text)
    proc = run_specc("check", path)
    (e,) = errors_of(proc)
    assert e["line"] == "8"
    assert "(batch, 4, 6, 6)" in e["msg"]
    assert "flatten" in proc.stderr and "conv2d 'conv2d_1' gives (batch, 4, 6, 6)" in proc.stderr


def test_add_of_two_shapes_names_both_producers(write_spec):
    text = HEAD + (
        "model:\n"
        "  - {type: conv2d, name: a, out_channels: 4, kernel_size: 3}\n"
        "  - {type: conv2d, name: b, from: image, out_channels: 4, kernel_size: 1}\n"
        "  - {type: add, from: [a, b]}\n"
    )
    path = write_spec(text)
    proc = run_specc("check", path)
    (e,) = errors_of(proc)
    assert e["line"] == "9" and "(batch, 4, 6, 6) and (batch, 4, 8, 8)" in e["msg"]
    assert (
        "conv2d 'a' gives (batch, 4, 6, 6)" in proc.stderr
        and "conv2d 'b' gives (batch, 4, 8, 8)" in proc.stderr
    )


def test_duplicate_names(write_spec):
    text = HEAD + "model:\n  - {type: relu, name: r}\n  - {type: relu, name: r}\n"
    (e,) = check(write_spec, text)[0]
    assert e["line"] == "8" and "duplicate layer name 'r'" in e["msg"]


def test_yaml_alias_bomb_is_refused(write_spec):
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    errs, _ = check(write_spec, "\n".join(lines) + "\n")
    assert any("alias bomb" in e["msg"] for e in errs)


def test_python_tag_is_refused_and_never_constructed(write_spec, tmp_path):
    marker = tmp_path / "pwned"
    text = HEAD + f"model:\n  - !!python/object/apply:os.system ['touch {marker}']\n"
    (e,) = check(write_spec, text)[0]
    assert e["line"] == "7" and "unsupported YAML tag" in e["msg"]
    assert not marker.exists()


def test_empty_file(write_spec):
    (e,) = check(write_spec, "# nothing but a comment\n")[0]
    assert "empty" in e["msg"]


def test_missing_file(tmp_path):
    proc = run_specc("check", tmp_path / "nope.yaml")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"{tmp_path / 'nope.yaml'}: error: no such file" in proc.stderr


def test_invalid_yaml_is_located(write_spec):
    (e,) = check(write_spec, "specc: 1\nname: [unclosed\n")[0]
    assert "invalid YAML" in e["msg"] and e["line"] in ("2", "3")


def test_invalid_toml_is_located(write_spec):
    (e,) = check(write_spec, 'specc = 1\nname = "x"\ntask = \n', "spec.toml")[0]
    assert "invalid TOML" in e["msg"] and e["line"] == "3"


def test_toml_errors_point_into_arrays_of_tables(write_spec):
    text = (
        'specc = 1\nname = "t"\ntask = "classification"\n\n[inputs.image]\nshape = [1, 8, 8]\n\n'
        '[[model]]\ntype = "flatten"\n\n[[model]]\ntype = "linear"\nout_featurs = 3\n'
    )
    path = write_spec(text, "spec.toml")
    proc = run_specc("check", path)
    errs = errors_of(proc)
    assert ("13", "1") in {(e["line"], e["col"]) for e in errs}
    assert "did you mean 'out_features'?" in proc.stderr


def test_all_errors_of_a_file_are_reported_together(write_spec):
    text = "specc: 1\nname: t\ntask: classify\ninputs:\n  image: {shape: [4]}\nmodel:\n  - {type: linear, out_features: 0}\n  - {type: tanhh}\n"
    errs, _ = check(write_spec, text)
    assert {e["line"] for e in errs} == {"3", "7", "8"}


def test_block_errors_point_into_the_block_and_name_the_use(write_spec):
    text = HEAD + (
        "blocks:\n  b:\n    params: {n: 4}\n    layers:\n      - {type: conv2d, out_channels: $n, kernel_size: 3}\n"
        "model:\n  - {type: b, n: 0}\n  - {type: b, m: 3}\n"
    )
    path = write_spec(text)
    proc = run_specc("check", path)
    errs = errors_of(proc)
    lines = {e["line"] for e in errs}
    assert "10" in lines  # out_channels: $n -> 0, reported in the block body
    assert "13" in lines and "block 'b' has no parameter 'm'" in proc.stderr
    assert "used at line 12" in proc.stderr


def test_unsupported_yaml_merge_key(write_spec):
    errs, _ = check(write_spec, "base: &b {a: 1}\nother:\n  <<: *b\n")
    assert any("merge keys" in e["msg"] for e in errs)


def test_duplicate_yaml_key(write_spec):
    errs, _ = check(write_spec, HEAD + "task: regression\nmodel: [relu]\n")
    assert any(e["line"] == "6" and "duplicate key 'task'" in e["msg"] for e in errs)


def test_debug_env_shows_traceback(write_spec):
    path = write_spec("specc: 2\n")
    proc = run_specc("check", path, env={"SPECC_DEBUG": "1"})
    assert "Traceback" in proc.stderr


def test_usage_error_exits_2():
    proc = run_specc("check")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
