"""IR -> model.py / train.py / spec.json: Jinja render, inline, ast.parse, ruff format and check,
atomic write.

Each file is rendered from the task's partial (templates/tasks/), which extends the base template;
train.py inlines the training machinery (compiler/train/) after the spec's own part. Every
generated file must pass `ruff check` (pyflakes: unused imports and variables, undefined names,
redefinitions); a finding is specc's bug, reported as an internal error naming the spec and line.
"""

from __future__ import annotations

import ast
import json
import subprocess
from importlib import resources
from pathlib import Path

import jinja2

from .diagnostics import UserError
from .files import atomic_write
from .inline import COMMON_IMPORTS, add_imports, inline
from .pipeline import Compiled, spec_doc
from .sanitize import lit
from .train import MACHINERY


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(
            lambda name: resources.files("specc.templates").joinpath(name).read_text("utf-8")
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["lit"] = lit
    return env


class GeneratedCodeError(Exception):
    """specc generated code that fails its own checks: a bug in specc, never the user's."""


def _ruff(args: list[str], code: str) -> subprocess.CompletedProcess:
    """Run ruff on code through stdin, ignoring any user configuration (same bytes everywhere)."""
    from ruff.__main__ import find_ruff_bin

    return subprocess.run(
        [
            find_ruff_bin(),
            *args,
            "--isolated",
            "--line-length",
            "120",
            "--stdin-filename",
            "generated.py",
            "-",
        ],
        input=code.encode(),
        capture_output=True,
        check=False,
    )


def ruff_format(code: str) -> str:
    """Imports sorted (ruff's isort), then ruff's formatter."""
    for args in (["check", "--select", "I", "--fix", "--quiet"], ["format"]):
        proc = _ruff(args, code)
        if proc.returncode != 0:
            raise GeneratedCodeError(
                f"ruff could not format generated code: {proc.stderr.decode()}"
            )
        code = proc.stdout.decode()
    return code


LINT_RULES = (
    "F"  # pyflakes: unused imports (F401) and variables (F841), undefined names (F821), ...
)


def lint(code: str, name: str, spec_path) -> None:
    """`ruff check` a generated file; any finding is an internal error naming spec and line."""
    proc = _ruff(["check", "--select", LINT_RULES, "--output-format", "concise", "--quiet"], code)
    if proc.returncode != 0:
        findings = [
            line.replace("generated.py:", f"{name}:", 1)
            for line in proc.stdout.decode().splitlines()
            if line.strip()
        ]
        raise GeneratedCodeError(
            f"specc generated a {name} for {spec_path} that fails ruff check:\n  "
            + "\n  ".join(findings)
        )


def _inlined(compiled: Compiled, name: str) -> list:
    """The modules inlined into one generated file, in order."""
    if name != "train.py":
        return []
    return [inline(m) for m in (*compiled.task.train_modules, *MACHINERY)]


def render(compiled: Compiled) -> dict[str, str]:
    """The generated files as text (deterministic for a given spec file)."""
    env = _env()
    out = {}
    for name, template in compiled.task.templates.items():
        inlined = _inlined(compiled, name)
        code = env.get_template(template).render(
            ir=compiled.ir, machinery="\n\n".join(part.body for part in inlined)
        )
        inlined_imports = [line for part in inlined for line in part.imports]
        imports = [*COMMON_IMPORTS, *compiled.ir.helper_imports, *inlined_imports]
        code = add_imports(code, imports)
        ast.parse(code, filename=name)  # a template bug must never produce a broken file
        code = ruff_format(code)
        lint(code, name, compiled.path)
        out[name] = code
    parsed = compiled.parsed
    resolved = {
        "source_sha256": compiled.sha256,
        "overrides": list(compiled.overrides),
        # The spec as validated, defaults filled in and overrides applied: a spec of its own
        # that compiles to this very model.
        "spec": spec_doc(parsed),
        "identity": compiled.identity,  # what a checkpoint of this run may be resumed with
        # What it expanded to: every input (those the task adds too) and every layer, named,
        # with explicit inputs and its section.
        "inputs": {n: i.model_dump(mode="json") for n, i in parsed.inputs.items()},
        "layers": [
            {
                "section": origin.section,
                **layer.model_dump(mode="json", by_alias=True, exclude_none=True),
            }
            for layer, origin in zip(parsed.layers, parsed.origins, strict=True)
        ],
    }
    out["spec.json"] = json.dumps(resolved, indent=2) + "\n"
    return out


def write(compiled: Compiled, out_dir: Path) -> dict[str, Path]:
    """Write the generated files into out_dir (only there: names are fixed, never from the spec)."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"output path {out_dir} exists and is not a folder")
    written = {}
    for name, text in render(compiled).items():
        target = out_dir / name
        atomic_write(target, text)
        written[name] = target
    return written
