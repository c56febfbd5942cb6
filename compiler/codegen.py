"""IR -> model.py / train.py / spec.json: Jinja render, ast.parse, ruff format, atomic write."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import tempfile
from importlib import resources
from pathlib import Path

import jinja2

from .diagnostics import UserError
from .pipeline import Compiled
from .sanitize import lit

FILES = ("model.py", "train.py")


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


def ruff_format(code: str) -> str:
    """Format with ruff's defaults, ignoring any user configuration (same bytes everywhere)."""
    from ruff.__main__ import find_ruff_bin

    proc = subprocess.run(
        [
            find_ruff_bin(),
            "format",
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
    if proc.returncode != 0:
        raise RuntimeError(f"ruff could not format generated code: {proc.stderr.decode()}")
    return proc.stdout.decode()


def render(compiled: Compiled) -> dict[str, str]:
    """The generated files as text (deterministic for a given spec file)."""
    env = _env()
    out = {}
    for name in FILES:
        code = env.get_template(f"{name}.jinja").render(ir=compiled.ir)
        ast.parse(code, filename=name)  # a template bug must never produce a broken file
        out[name] = ruff_format(code)
    spec = compiled.spec.model_dump(mode="json", by_alias=True)
    resolved = {
        "source_sha256": compiled.sha256,
        "overrides": list(compiled.overrides),
        "spec": spec,
    }
    out["spec.json"] = json.dumps(resolved, indent=2) + "\n"
    return out


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write to a temporary file in the same folder, fsync, rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
