"""Generated code: golden copies, determinism, YAML/TOML equivalence, and safety against hostile specs."""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path

import pytest
import torch
from helpers import REPO, SPECS, run_specc

from specc.compiler import export as ex
from specc.compiler.codegen import render
from specc.compiler.pipeline import compile_file

SPEC_FILES = sorted(SPECS.glob("*.*"))


@pytest.mark.parametrize("spec", SPEC_FILES, ids=lambda p: p.name)
def test_generated_code_matches_golden(spec):
    files = render(compile_file(spec))
    golden = REPO / "tests" / "golden" / spec.stem
    for name in ("model.py", "train.py"):
        expected = (golden / name).read_text(encoding="utf-8")
        assert files[name] == expected, (
            f"{spec.name}: {name} differs from golden (make golden regenerates it)"
        )


def _imports(tree) -> tuple[set[str], set[str]]:
    """(modules imported anywhere, modules imported inside a `try: ... except ImportError`)."""

    def names(node):
        if isinstance(node, ast.Import):
            return {a.name.split(".")[0] for a in node.names}
        if isinstance(node, ast.ImportFrom) and node.module:
            return {node.module.split(".")[0]}
        return set()

    everywhere = set().union(*(names(n) for n in ast.walk(tree)))
    guarded = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(
            isinstance(h.type, ast.Name) and h.type.id == "ImportError" for h in node.handlers
        ):
            guarded |= set().union(*(names(n) for stmt in node.body for n in ast.walk(stmt)))
    return everywhere, guarded


@pytest.mark.parametrize("spec", SPEC_FILES, ids=lambda p: p.name)
def test_generated_code_is_standalone_and_formatted(spec):
    """Generated files import the standard library, torch and numpy; anything else is optional."""
    files = render(compile_file(spec))
    for name in ("model.py", "train.py"):
        everywhere, guarded = _imports(ast.parse(files[name]))
        required = everywhere - guarded - set(sys.stdlib_module_names)
        assert required <= {"torch", "numpy", "model"}, required
        assert "specc" not in everywhere and "compiler" not in everywhere
        assert guarded - set(sys.stdlib_module_names) <= {
            "rich",
            "matplotlib",
            "torch",
            "safetensors",
        }, guarded
    forward = (
        files["model.py"].split("def forward", 1)[1].split("return", 1)[0]
    )  # the model class comes first
    body = forward.split("-> torch.Tensor:\n", 1)[1]  # after the signature, however it wraps
    for line in body.splitlines():
        if "=" in line:
            assert "# (batch" in line, f"forward line without a shape comment: {line}"


def test_build_is_byte_for_byte_deterministic(tmp_path):
    spec = SPECS / "resnet_tiny.yaml"
    for out in ("a", "b"):
        assert run_specc("build", spec, "-o", tmp_path / out, "--no-verify").returncode == 0
    for name in ("model.py", "train.py", "spec.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_yaml_and_toml_spellings_compile_to_identical_code(tmp_path):
    toml_spec = SPECS / "mlp_digits.toml"
    import tomllib

    import yaml

    data = tomllib.loads(toml_spec.read_text())
    yaml_spec = tmp_path / "mlp_digits.toml.yaml"
    yaml_spec.write_text(yaml.safe_dump(data, sort_keys=False))
    a, b = render(compile_file(toml_spec)), render(compile_file(yaml_spec))

    def strip(text):
        return [
            ln
            for ln in text.splitlines()
            if "sha256" not in ln and "Source:" not in ln and "SPEC_SHA256" not in ln
        ]

    for name in ("model.py", "train.py"):
        assert strip(a[name]) == strip(b[name])
    assert json.loads(a["spec.json"])["spec"] == json.loads(b["spec.json"])["spec"]


HOSTILE = [
    'a"; import os; os.system("echo pwned") #',
    "x\nimport os\n",
    "__import__('os').system('id')",
    "../../../etc/passwd",
    "self",
    "train",
    "for",
    "ünïcødé 名前",
    "'''",
    '"""',
    "\\",
    "1abc",
]


def test_hostile_names_and_strings_cannot_inject_code(tmp_path):
    layers = [{"type": "linear", "name": n, "out_features": 3} for n in HOSTILE if n != "self"]
    layers[2]["from"] = [HOSTILE[1]]
    spec = {
        "specc": 1,
        "name": HOSTILE[0] + "\n" + HOSTILE[3],
        "description": '"""\nimport os\nos.system("echo pwned")\n"""',
        "task": "classification",
        "inputs": {"self": {"shape": [3]}},
        "labels": HOSTILE[:3],
        "model": layers,
    }
    path = tmp_path / "evil.json.yaml"
    path.write_text(json.dumps(spec))  # JSON is YAML: every string arrives exactly as written
    out = tmp_path / "out"
    proc = run_specc("build", path, "-o", out, "--no-verify")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "manifest.json",
        "model.py",
        "spec.json",
        "train.py",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.json.yaml", "out"]
    for name in ("model.py", "train.py"):
        tree = ast.parse((out / name).read_text())
        names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        assert not names & {"__import__", "eval", "exec", "system", "compile", "open"} - (
            {"open"} if name == "train.py" else set()
        )
        attrs = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
        assert "system" not in attrs
        if name == "model.py":
            imports = {
                a.name
                for n in ast.walk(tree)
                if isinstance(n, ast.Import | ast.ImportFrom)
                for a in n.names
            }
            assert imports <= {"torch", "torch.nn.functional", "nn", "math"}, (
                imports
            )  # nothing injected
        allowed = (ast.Import, ast.ImportFrom, ast.Assign, ast.ClassDef, ast.FunctionDef, ast.If)
        top = tree.body[1:]  # after the module docstring
        odd = [ast.unparse(st) for st in top if not isinstance(st, allowed)]
        assert odd == (
            []
            if name == "model.py"
            else ["sys.path.insert(0, str(Path(__file__).resolve().parent))"]
        ), odd
        names = [
            t.attr
            for n in ast.walk(tree)
            if isinstance(n, ast.Assign)
            for t in n.targets
            if isinstance(t, ast.Attribute)
        ]
        assert all(n.isidentifier() for n in names)
    # the model still works: layer names became distinct identifiers, nothing shadowed
    model = ex.instantiate(out)
    assert model.training is False
    assert model(torch.zeros(2, 3)).shape == (2, 3)


def test_default_build_folder_is_a_slug_inside_build(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text(
        'specc: 1\nname: "../../escape me"\ntask: regression\ninputs: {x: {shape: [2]}}\nmodel: [{type: linear, out_features: 1}]\n'
    )
    proc = run_specc("build", spec, "--no-verify", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "build" / "escape_me" / "model.py").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["build", "s.yaml"]


def test_build_dry_run_reports_parity(tmp_path):
    proc = run_specc("build", SPECS / "xor.yaml", "-o", tmp_path / "xor")
    assert proc.returncode == 0, proc.stderr
    assert "ONNX Runtime matches PyTorch" in proc.stdout


def test_build_fails_early_naming_the_layer_that_cannot_export(tmp_path, monkeypatch):
    """A layer whose generated code torch.onnx cannot export is named by the dry-run."""
    from specc.compiler import driver
    from specc.compiler.diagnostics import UserError

    path = tmp_path / "g.yaml"
    path.write_text(
        "specc: 1\nname: g\ntask: regression\ninputs: {x: {shape: [4]}}\nmodel:\n  - {type: linear, out_features: 4}\n  - {type: linear, name: bad, out_features: 2}\n"
    )
    compiled = compile_file(path)
    out = tmp_path / "out"
    from specc.compiler.codegen import write

    write(compiled, out)
    # sabotage the generated module the way a broken layer template would: data-dependent control flow
    text = (
        (out / "model.py")
        .read_text()
        .replace("self.bad = nn.Linear(4, 2)", "self.bad = Unexportable()")
    )
    broken = "class Unexportable(nn.Module):\n    def forward(self, x):\n        return x[:, :2] if float(x.sum()) > 0 else x[:, 2:]\n\n\n"
    text = text.replace("class G(nn.Module):", broken + "class G(nn.Module):")
    (out / "model.py").write_text(text)
    assert "Unexportable()" in text
    with pytest.raises(UserError, match=r"layer 'bad' \(linear\)"):
        driver.dry_run(compiled, out)


def test_spec_json_holds_the_expanded_layers(tmp_path):
    proc = run_specc("build", SPECS / "resnet_tiny.yaml", "-o", tmp_path, "--no-verify")
    assert proc.returncode == 0
    doc = json.loads((tmp_path / "spec.json").read_text())
    layers = doc["layers"]
    assert all("name" in layer and "from" in layer for layer in layers)  # names and inputs explicit
    assert {layer["section"] for layer in layers} == {"model"}
    assert not any(layer["type"] in ("residual", "downsample") for layer in layers)  # expanded
    assert doc["spec"]["train"]["optimizer"]["weight_decay"] == 0.0  # defaults filled in
    assert Path(doc["spec"]["name"]).name == "resnet_tiny"


@pytest.mark.parametrize("spec", ["resnet_tiny.yaml", "dcgan_digits.yaml", "seq2seq_reverse.yaml"])
def test_spec_json_compiles_to_the_same_model(spec, tmp_path):
    """spec.json's spec is a spec of its own: the same code, but for the header naming its source."""
    assert run_specc("build", SPECS / spec, "-o", tmp_path / "a", "--no-verify").returncode == 0
    doc = json.loads((tmp_path / "a" / "spec.json").read_text())
    again = tmp_path / "again.json"
    again.write_text(json.dumps(doc["spec"]))
    proc = run_specc("build", again, "-o", tmp_path / "b", "--no-verify")
    assert proc.returncode == 0, proc.stderr

    def body(path):
        lines = path.read_text().splitlines()
        return [line for line in lines if "sha256" not in line.lower() and "Source:" not in line]

    for name in ("model.py", "train.py"):
        assert body(tmp_path / "a" / name) == body(tmp_path / "b" / name), name


def test_generated_code_that_fails_ruff_check_is_an_internal_error_naming_spec_and_line():
    """specc lints what it writes: a template or layer bug that leaves an undefined name (F821)
    is caught at build time, never shipped."""
    from dataclasses import replace

    from specc.compiler.codegen import GeneratedCodeError

    compiled = compile_file(SPECS / "xor.yaml")
    nodes = list(compiled.ir.nodes)
    nodes[0] = replace(nodes[0], call="undefined_helper(x)")
    broken = replace(compiled, ir=replace(compiled.ir, nodes=tuple(nodes)))
    with pytest.raises(GeneratedCodeError) as e:
        render(broken)
    message = str(e.value)
    assert "xor.yaml" in message and re.search(r"model\.py:\d+:\d+: F821", message), message
    assert "undefined_helper" in message


SCHEDULES = [
    "step, step_epochs: 2",
    "multistep, milestones: [2, 3]",
    "exponential",
    "cosine",
    "one_cycle",
    "plateau",
]


@pytest.mark.parametrize("optimizer", ["sgd, momentum: 0.9", "adam", "adamw", "rmsprop"])
@pytest.mark.parametrize("schedule", SCHEDULES)
def test_every_optimizer_and_schedule_generates_code_that_passes_ruff(
    optimizer, schedule, tmp_path
):
    """The optimizer and schedule are written as code; each kind is checked by the build's lint."""
    spec = (SPECS / "xor.yaml").read_text()
    spec = spec.replace("train:", f"train:\n  schedule: {{type: {schedule}}}", 1)
    spec = re.sub(r"optimizer: \{[^}]*\}", f"optimizer: {{type: {optimizer}}}", spec)
    path = tmp_path / "s.yaml"
    path.write_text(spec)
    files = render(compile_file(path))
    assert (
        f"torch.optim.{ {'sgd': 'SGD', 'adam': 'Adam', 'adamw': 'AdamW', 'rmsprop': 'RMSprop'}[optimizer.split(',')[0]] }("
        in files["train.py"]
    )
