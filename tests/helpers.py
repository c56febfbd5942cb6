"""Helpers shared by the tests (tests/ is on sys.path; the repo root is not, so the installed specc is tested)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SPECS = REPO / "specs"
SPECC = str(Path(sys.executable).with_name("specc"))
LOCATED = re.compile(r"^(?P<path>[^\n:]+):(?P<line>\d+):(?P<col>\d+): error: (?P<msg>.+)$", re.M)


def specc_env(env: dict | None = None) -> dict:
    """The environment a `specc` subprocess runs in: no SPECC_DEBUG, and under pytest-xdist one
    torch thread, since the workers share the cores (oversubscribed, training ran 3.6x slower)."""
    full_env = {k: v for k, v in os.environ.items() if k != "SPECC_DEBUG"}
    if os.environ.get("PYTEST_XDIST_WORKER"):
        full_env.setdefault("OMP_NUM_THREADS", "1")
    full_env.update(env or {})
    return full_env


def run_specc(*args, cwd=None, env=None, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [SPECC, *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=specc_env(env),
        timeout=timeout,
    )


def errors_of(proc: subprocess.CompletedProcess) -> list[dict]:
    """Located errors printed by a failed command; asserts the contract for every failure."""
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    found = [m.groupdict() for m in LOCATED.finditer(proc.stderr)]
    assert found, proc.stderr
    return found
