"""The spec fuzzer (tests/fuzz.py) under hypothesis: mutated example specs, damaged YAML/TOML and
hostile `--set`/`--unset` values never make `specc check` exit 3 or print a traceback; every
error is located at `file:line:col` or at the option it came from; every case stays within
its CPU time and memory budget (docs/security.md). Seeded, and bounded to about a minute in
all; `make fuzz` runs the same generator for 100,000 cases and prints the figures."""

from __future__ import annotations

import random

import pytest
from fuzz import SPECS, Case, check_cli, check_in_process, cli_args, make_case, write_case
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

CASES = 300  # per kind of damage: about 15 s of CPU each, memory measured in every case


def _kind(kind: str):
    """Cases of one kind: hypothesis draws the seed of the shared generator, so a failure
    reports the seed that makes the case again (`make_case(random.Random(seed), kind)`)."""
    return st.integers(0, 2**32 - 1).map(lambda seed: make_case(random.Random(seed), kind))


FUZZ = settings(
    max_examples=CASES,
    derandomize=True,  # the same cases on every run: a failure reproduces
    deadline=None,  # the budget is CPU time, checked in the case (not wall time on a busy machine)
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.fixture(scope="module", autouse=True)
def warm():
    """Imports and first-use costs (pydantic's schemas) are not a case's."""
    check_in_process(SPECS[0], [])


def _holds(case: Case, tmp_path_factory) -> None:
    path = write_case(case, tmp_path_factory.mktemp("case"))
    outcome = check_in_process(path, case.args)
    problems = outcome.problems(str(path))
    assert not problems, (case.describe()[:500], problems, outcome.stderr[-1000:])


@pytest.mark.slow
@FUZZ
@given(_kind("data"))
def test_mutated_specs(tmp_path_factory, case):
    _holds(case, tmp_path_factory)


@pytest.mark.slow
@FUZZ
@given(_kind("text"))
def test_damaged_yaml_and_toml(tmp_path_factory, case):
    _holds(case, tmp_path_factory)


@pytest.mark.slow
@FUZZ
@given(_kind("set"))
def test_hostile_set_and_unset(tmp_path_factory, case):
    _holds(case, tmp_path_factory)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(6))
def test_through_the_real_cli(tmp_path, seed):
    """A few cases through the installed `specc` in a child process: the same exit code as
    in-process, no traceback, located errors (its CPU time includes starting Python)."""
    case = make_case(random.Random(f"cli:{seed}"))
    path = write_case(case, tmp_path)
    args = cli_args(case.args)  # as a command line can carry them
    inside, outside = check_in_process(path, args), check_cli(path, args)
    assert outside.code == inside.code, (case.describe()[:500], outside.stderr[-1000:])
    assert not outside.problems(str(path)), (case.describe()[:500], outside.stderr[-1000:])
