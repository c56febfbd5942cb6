"""Positions recorded by the loaders, the check output, and the JSON Schema."""

import json

from helpers import SPECS, run_specc

from specc.compiler.layers import LAYERS
from specc.compiler.load import load_text


def test_toml_positions_for_tables_arrays_of_tables_and_inline_tables():
    text = (
        "specc = 1\n"
        '[inputs]\nimage = { shape = [1, 8, 8], dtype = "float32" }\n'
        '[[model]]\ntype = "flatten"\n'
        '[[model]]\ntype = "linear"\n  out_features = 3 # comment\n'
        "[train.optimizer]\nlr = 0.1\n"
        'names = ["a",\n  "b"]\n'
    )
    src = load_text(text, toml=True)
    assert src.data["model"][1]["out_features"] == 3
    pos = lambda *p: (src.pos(p).line, src.pos(p).col)  # noqa: E731
    assert pos("inputs", "image", "dtype") == (3, 38)
    assert pos("model", 0) == (4, 1) and pos("model", 1, "type") == (7, 8)
    assert (
        src.pos(("model", 1, "out_features"), at_key=True).line,
        src.pos(("model", 1, "out_features"), at_key=True).col,
    ) == (8, 3)
    assert pos("train", "optimizer", "lr") == (10, 6)
    assert pos("train", "optimizer", "names", 1) == (12, 3)


def test_yaml_positions_for_flow_and_block_styles():
    src = load_text("a:\n  - relu\n  - {type: linear, out_features: 3}\n")
    assert (src.pos(("a", 1, "out_features")).line, src.pos(("a", 1, "out_features")).col) == (
        3,
        34,
    )
    assert (src.pos(("a", 0)).line, src.pos(("a", 0)).col) == (2, 5)


def test_check_json_lists_every_layer_with_shapes():
    proc = run_specc("check", SPECS / "lenet5.yaml", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    shapes = [tuple(r["output_shape"]) for r in doc["layers"]]
    # the LeNet-5 table of the course
    assert shapes == [
        ("batch", 1, 28, 28),
        ("batch", 20, 28, 28),
        ("batch", 20, 28, 28),
        ("batch", 20, 14, 14),
        ("batch", 50, 14, 14),
        ("batch", 50, 14, 14),
        ("batch", 50, 7, 7),
        ("batch", 2450),
        ("batch", 500),
        ("batch", 500),
        ("batch", 10),
    ]
    # 20*(1*5*5+1) + 50*(20*5*5+1) + 500*(2450+1) + 10*(500+1)
    assert doc["total_params"] == 520 + 25050 + 1225500 + 5010 == 1_256_080


def test_check_table_for_every_example():
    for spec in SPECS.glob("*.*"):
        proc = run_specc("check", spec)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip().endswith(": ok") and "total parameters:" in proc.stdout


def test_schema_covers_every_layer_and_section():
    proc = run_specc("schema")
    assert proc.returncode == 0
    schema = json.loads(proc.stdout)
    assert set(schema["required"]) >= {"specc", "name", "task", "inputs"}
    assert set(schema["properties"]) >= {
        "model",
        "encoder",
        "decoder",
        "generator",
        "discriminator",
    }
    text = json.dumps(schema)
    for kind in LAYERS:
        assert f'"const": "{kind}"' in text, kind
    assert schema["additionalProperties"] is False
