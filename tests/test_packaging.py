"""The installed package: names, extras, and what importing it pulls in."""

import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest


@pytest.mark.parametrize("name", ["compiler", "runtime", "templates"])
def test_generic_top_level_names_are_not_importable(name, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", f"import {name}"], cwd=tmp_path, capture_output=True, text=True
    )
    assert proc.returncode != 0 and "ModuleNotFoundError" in proc.stderr


def test_specc_packages_import(tmp_path):
    code = "import specc.compiler, specc.runtime, specc.templates; print('ok')"
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True
    )
    assert proc.stdout.strip() == "ok", proc.stderr


RUNTIME_MODULES = sorted(
    p.stem for p in (Path(__file__).parent.parent / "runtime").glob("*.py") if p.stem != "__init__"
)


@pytest.mark.parametrize("module", ["__init__", *RUNTIME_MODULES])
def test_runtime_imports_neither_torch_nor_the_compiler(module, tmp_path):
    """specc.runtime promises numpy + onnxruntime only: each of its modules, imported alone."""
    name = "specc.runtime" if module == "__init__" else f"specc.runtime.{module}"
    code = (
        f"import sys, {name}; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch' "
        "or m.startswith('specc.compiler') or m == 'onnx'))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]", proc.stdout


def test_check_path_never_imports_torch(tmp_path):
    code = (
        "import sys; from specc.compiler.pipeline import compile_file; "
        f"compile_file({str(Path(__file__).parent.parent / 'specs' / 'lenet5.yaml')!r}); print('torch' in sys.modules)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True
    )
    assert proc.stdout.strip() == "False", proc.stderr


def test_one_onnxruntime_flavour():
    dists = {d.metadata["Name"].lower() for d in metadata.distributions()}
    assert ("onnxruntime" in dists) != ("onnxruntime-gpu" in dists)


def test_extras_keep_the_two_onnxruntime_flavours_apart():
    requires = metadata.requires("specc") or []
    base = [r for r in requires if "extra ==" not in r]
    assert not any(r.startswith("onnxruntime") for r in base)
    assert any(r.startswith("onnxruntime-gpu") and 'extra == "gpu"' in r for r in requires)
    assert any(r.startswith("onnxruntime>") and 'extra == "cpu"' in r for r in requires)


def test_every_source_file_is_installed():
    """A new package folder or template that pyproject.toml does not list would be missing from
    every installation but this checkout."""
    import specc.compiler

    installed = Path(specc.compiler.__file__).parent.parent
    repo = Path(__file__).parent.parent
    for folder in ("compiler", "runtime", "templates"):
        wanted = {
            p.relative_to(repo / folder)
            for p in (repo / folder).rglob("*")
            if p.suffix in (".py", ".jinja") and "__pycache__" not in p.parts
        }
        have = {
            p.relative_to(installed / folder)
            for p in (installed / folder).rglob("*")
            if p.suffix in (".py", ".jinja")
        }
        assert wanted <= have, f"{folder}: not installed: {sorted(map(str, wanted - have))}"
