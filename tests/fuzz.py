"""The spec fuzzer: mutated example specs, damaged YAML/TOML and hostile `--set`/`--unset` values,
each run through `specc check` in-process (the CLI's own entry point and error mapping), judged
against the promises of docs/security.md: never exit 3, never a traceback, every exit-1 line
located at `file:line:col` or at the `--set`/`--unset` it came from, and every case within its
CPU time and memory budget.

One generator (`make_case(rng)`) serves two drivers: tests/test_fuzz.py draws its `rng` from
hypothesis (seeded, a bounded number of cases), and `python tests/fuzz.py` (`make fuzz`) runs
many seeded cases and prints the figures: exit codes, time, memory, and the root causes of
every failure (grouped by exception and the innermost specc frame).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import random
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
import traceback
import tracemalloc
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import typer
import yaml

REPO = Path(__file__).resolve().parent.parent
SPECS = sorted((REPO / "specs").glob("*.*"))
CPU_BUDGET_S = 2.0  # `specc check` of any file within the size cap, in-process
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: many cases a second
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
MEMORY_BUDGET = 500 * 2**20  # bytes allocated at the peak (tracemalloc), in-process
DIAGNOSTIC = re.compile(r"^(?P<where>.+?)(?::(?P<line>\d+):(?P<col>\d+))?: (?P<kind>error|note): ")

# ----------------------------------------------------------------------------- hostile pieces

CONTROL = [chr(c) for c in (*range(0, 9), 11, 12, *range(14, 32), 127, 0x85, 0x9B, 0xFEFF)]
SYMBOLS = list("[]{}:,-#&*!|>'\"%@`?\\=.$~\t\n ") + ["\r\n", "é", "😀", "\u2028", "\ud800"]
TAGS = [
    "!!float",
    "!!int",
    "!!bool",
    "!!str",
    "!!null",
    "!!binary",
    "!!set",
    "!!omap",
    "!!map",
    "!!seq",
    "!!timestamp",
    "!!python/object/apply:os.system",
    "!foo",
    "!",
    "!!merge",
]
NUMBERS = [
    0,
    -1,
    1,
    2,
    3,
    7,
    64,
    10**6,
    10**8,
    10**9,
    2**31,
    2**63,
    10**20,
    -(10**20),
    0.5,
    -0.5,
    1e-300,
    1e300,
    float("inf"),
    float("-inf"),
    float("nan"),
]
WORDS = [
    "",
    "x",
    "relu",
    "linear",
    "vocab",
    "source_vocab",
    "target_vocab",
    "input",
    "$p",
    "batch",
    "time",
    "hidden",
    "auto",
    "none",
    "null",
    "true",
    "model",
    "a" * 300,
    "é",
    "0",
    "1e999",
    "inf",
    "nan",
    "-1",
    "x\ny",
    "$",
    "from",
    "__init__",
    "class",
    "self",
    "torch",
]
RAW_VALUES = [
    "[[[[",
    "]]",
    "{",
    "\x01",
    "!!float abc",
    "!!int 0x",
    "!!bool maybe",
    "&a [*a]",
    "*nope",
    "null",
    "~",
    "",
    " ",
    "[1, 2",
    "{a: 1, a: 2}",
    "a: b: c",
    "- x",
    "'",
    '"\\',
    "!!python/object/apply:os.system [true]",
    "[" * 5000,
    "[" * 40 + "]" * 40,
    "1" * 40,
    "0x" + "f" * 30,
    ".inf",
    ".nan",
    "-.inf",
    "1e400",
    "2e-400",
    "{<<: {a: 1}}",
    "\t",
    "%YAML 1.1",
    "--- 1\n--- 2",
    "? [1]\n: 2",
    "é" * 100,
    "\ud800",
    "[" + "1," * 30000 + "]",
]


def _nested(depth: int, leaf=1):
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


def hostile_value(rng: random.Random, known: list[str]):
    """A value to put where a spec has one: wrong type, extreme size, deep, long, or plausible."""
    pick = rng.random()
    if pick < 0.3:
        return rng.choice(NUMBERS)
    if pick < 0.5:
        return rng.choice(WORDS + known) if known else rng.choice(WORDS)
    if pick < 0.6:
        return rng.choice([None, True, False, [], {}, [1], [1, 2], [[1]], ["x"], {"type": "relu"}])
    if pick < 0.7:
        return _nested(rng.choice([5, 31, 33, 60, 300, 2000]))
    if pick < 0.8:
        return [rng.choice(NUMBERS + WORDS) for _ in range(rng.choice([2, 3, 10, 100, 5000]))]
    if pick < 0.9:
        return {
            rng.choice(WORDS + known or WORDS) or "k": hostile_value(rng, known)
            for _ in range(rng.randint(1, 3))
        }
    return "".join(
        rng.choice(CONTROL + SYMBOLS + list("abc019")) for _ in range(rng.randint(1, 20))
    )


# ----------------------------------------------------------------------------- spec data


def _dump(value, **options) -> str:
    """YAML text of a value: libyaml's emitter, or PyYAML's (which escapes lone surrogates)."""
    try:
        return yaml.dump(value, Dumper=_DUMPER, **options)
    except UnicodeEncodeError:
        return yaml.safe_dump(value, **options)


def paths_of(data) -> list[tuple]:
    """The paths into the data (mapping keys and list indices), down to 40 levels."""
    out, stack = [], [((), data)]
    while stack:
        at, node = stack.pop()
        out.append(at)
        if len(at) < 40 and isinstance(node, dict | list):
            items = node.items() if isinstance(node, dict) else enumerate(node[:50])
            stack.extend((at + (k,), v) for k, v in items)
    return out


def words_of(data) -> list[str]:
    """Names a spec uses (layer names, inputs, blocks): plausible values for mutations."""
    found = set()
    for path in paths_of(data):
        if path and isinstance(path[-1], str):
            found.add(path[-1])
    node_names = [p for p in paths_of(data) if p and p[-1] == "name"]
    for p in node_names:
        v = _get(data, p)
        if isinstance(v, str):
            found.add(v)
    return sorted(found)


def _get(data, path):
    for part in path:
        data = data[part]
    return data


def mutate_data(rng: random.Random, data):
    """Change one to three places of the spec's data: replace, delete, wrap, add a key, repeat."""
    known = words_of(data)
    for _ in range(rng.randint(1, 3)):
        paths = [p for p in paths_of(data) if p]
        if not paths:
            break
        path = rng.choice(paths)
        parent, key = _get(data, path[:-1]), path[-1]
        op = rng.random()
        if op < 0.25 and isinstance(parent[key], int | float) and not isinstance(parent[key], bool):
            parent[key] = rng.choice([1, 2, 3, 4, 8, 16, 64, 100, 1000, 0.1, 0.9])  # plausible
        elif op < 0.55:
            parent[key] = hostile_value(rng, known)
        elif op < 0.7:
            del parent[key]
        elif op < 0.8:
            parent[key] = [parent[key]] if rng.random() < 0.5 else {"x": parent[key]}
        elif op < 0.9 and isinstance(parent, dict):
            parent[rng.choice(WORDS + known) or "k"] = hostile_value(rng, known)
        elif isinstance(parent, list):
            parent.insert(
                rng.randint(0, len(parent)),
                hostile_value(rng, known) if rng.random() < 0.5 else parent[key],
            )
        else:
            parent[key] = hostile_value(rng, known)
    return data


def to_toml(data: dict) -> str:
    """A small TOML writer (inline tables; None has no spelling, so it is left out)."""

    def key(k) -> str:
        k = str(k)
        return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k)

    def value(v) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int):
            return str(v)
        if isinstance(v, float):
            return (
                "nan"
                if math.isnan(v)
                else ("inf" if v > 0 else "-inf")
                if math.isinf(v)
                else repr(v)
            )
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v if x is not None) + "]"
        if isinstance(v, dict):
            return (
                "{"
                + ", ".join(f"{key(k)} = {value(x)}" for k, x in v.items() if x is not None)
                + "}"
            )
        return json.dumps(str(v))

    return "".join(f"{key(k)} = {value(v)}\n" for k, v in data.items() if v is not None)


def damage_text(rng: random.Random, text: str) -> str:
    """One to three edits of the file's characters: the damage an editor or a merge does, and
    the constructs a hostile file uses (tags, anchors, control characters, deep brackets)."""
    for _ in range(rng.randint(1, 3)):
        i = rng.randint(0, len(text))
        op = rng.random()
        if op < 0.2:
            text = text[:i] + text[i + rng.randint(1, 30) :]
        elif op < 0.4:
            piece = "".join(
                rng.choice(CONTROL + SYMBOLS + list("ax01 ")) for _ in range(rng.randint(1, 4))
            )
            text = text[:i] + piece + text[i:]
        elif op < 0.5:
            lines = text.splitlines(keepends=True)
            j = rng.randrange(len(lines)) if lines else 0
            if lines:
                lines.insert(j, lines[rng.randrange(len(lines))])
            text = "".join(lines)
        elif op < 0.6:
            text = text[:i] + rng.choice(TAGS) + " " + text[i:]
        elif op < 0.7:
            depth = rng.choice([10, 33, 200, 3000])
            text = text[:i] + "[" * depth + "1" + "]" * rng.choice([0, depth]) + text[i:]
        elif op < 0.8:
            text = (
                text[:i] + rng.choice(["&a ", "*a", "*b ", "&a [*a, *a] ", "<<: ", "? "]) + text[i:]
            )
        elif op < 0.9:
            m = list(re.finditer(r"\b\d+(\.\d+)?\b", text))
            if m:
                n = rng.choice(m)
                text = text[: n.start()] + str(rng.choice(NUMBERS)) + text[n.end() :]
        else:
            text = text[:i]
    return text


# ----------------------------------------------------------------------------- cases


@dataclass
class Case:
    kind: str  # "data", "text" or "set"
    base: str  # the example spec it came from
    suffix: str  # ".yaml" or ".toml"
    text: str
    args: list[str] = field(default_factory=list)  # --set=... / --unset=...

    def describe(self) -> str:
        return f"{self.kind} mutation of {self.base}{' ' + ' '.join(map(repr, self.args)) if self.args else ''}"


def _base(rng: random.Random) -> tuple[Path, str, object]:
    spec = rng.choice(SPECS)
    text = spec.read_text(encoding="utf-8")
    if rng.random() < 0.95:  # most cases: small generated data, so many more cases fit the time
        text = re.sub(r"(\bcount\s*[:=]\s*)\d+", r"\g<1>300", text)
    data = tomllib.loads(text) if spec.suffix == ".toml" else yaml.load(text, Loader=_LOADER)
    return spec, text, data


def make_case(rng: random.Random, kind: str | None = None) -> Case:
    """A case of `kind` (data, text, set), or of a kind drawn 40:35:25."""
    spec, text, data = _base(rng)
    pick = rng.random()
    if kind is not None:
        pick = {"data": 0.0, "text": 0.5, "set": 0.9}[kind]
    if pick < 0.4:
        data = mutate_data(rng, data)
        suffix = ".toml" if rng.random() < 0.3 else ".yaml"
        try:
            if suffix == ".toml":
                dumped = to_toml(data)
            else:
                dumped = _dump(data, sort_keys=False, allow_unicode=rng.random() < 0.5)
        except (yaml.YAMLError, RecursionError):
            dumped = text
        return Case("data", spec.name, suffix, dumped)
    if pick < 0.75:
        suffix = spec.suffix if rng.random() < 0.8 else rng.choice([".yaml", ".toml"])
        if suffix == ".toml" and spec.suffix != ".toml":
            text = to_toml(data)
        return Case("text", spec.name, suffix, damage_text(rng, text))
    return Case("set", spec.name, spec.suffix, text, set_args(rng, data))


def set_args(rng: random.Random, data) -> list[str]:
    """One to three `--set`/`--unset` options: real or broken keys, hostile values."""
    known = words_of(data)
    paths = [p for p in paths_of(data) if p]
    args = []
    for _ in range(rng.randint(1, 3)):
        r = rng.random()
        if r < 0.75 and paths:
            key = ".".join(map(str, rng.choice(paths)))
            if rng.random() < 0.2:
                key += "." + rng.choice(["x", "0", "type", "epochs", ".", ""])
        else:
            key = "".join(
                rng.choice(CONTROL + SYMBOLS + list("ab.0")) for _ in range(rng.randint(0, 8))
            )
        if rng.random() < 0.15:
            args.append(f"--unset={key}")
            continue
        if rng.random() < 0.4:
            raw = rng.choice(RAW_VALUES)
        else:
            try:
                raw = _dump(hostile_value(rng, known), default_flow_style=True).strip()
                raw = raw.removesuffix("\n...").strip()
            except (yaml.YAMLError, RecursionError):
                raw = "1"
        args.append(f"--set={key}" + ("" if rng.random() < 0.03 else "=" + raw))
    return args


# ----------------------------------------------------------------------------- running


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str
    cpu_s: float
    peak_bytes: int
    cause: str | None = None  # exit 3: the exception and the innermost specc frame

    def problems(self, case_path: str) -> list[str]:
        """What breaks a promise of docs/security.md."""
        found = []
        if self.code not in (0, 1):
            found.append(f"exit {self.code}" + (f": {self.cause}" if self.cause else ""))
        if "Traceback" in self.stdout + self.stderr:
            found.append("a traceback")
        if self.code == 1:
            lines = [ln for ln in self.stderr.splitlines() if ln.strip()]
            for ln in lines or ["(nothing on stderr)"]:
                m = DIAGNOSTIC.match(ln)
                located = m and (
                    (m["where"] == case_path and m["line"])
                    or re.match(r"--(set|unset)\b", m["where"])
                )
                if not located:
                    found.append(f"not located: {ln[:200]!r}")
                    break
        if self.cpu_s > CPU_BUDGET_S:
            found.append(f"{self.cpu_s:.2f} s of CPU (budget {CPU_BUDGET_S} s)")
        if self.peak_bytes > MEMORY_BUDGET:
            found.append(
                f"{self.peak_bytes / 2**20:.0f} MB at the peak (budget {MEMORY_BUDGET / 2**20:.0f} MB)"
            )
        return found


RETIME_ABOVE_S = 0.2  # a traced case slower than this is timed again without tracemalloc


class CaseTimeout(BaseException):  # not an Exception: the CLI's error mapping lets it through
    pass


@contextlib.contextmanager
def watchdog(seconds: float):
    """End a case that runs past `seconds` of CPU time, or ten times that of wall time (one that
    waits): a hang is a failure, not a wait. CPU time first, so that a machine whose cores are
    shared (a case took 26 s of wall time for 2 s of CPU) does not fail a case."""

    def expire(signum, frame):
        clock = "of CPU" if signum == signal.SIGPROF else "of wall time"
        raise CaseTimeout(
            f"still running after {seconds * (1 if clock == 'of CPU' else 10):g} s {clock}"
        )

    previous = {s: signal.signal(s, expire) for s in (signal.SIGALRM, signal.SIGPROF)}
    signal.setitimer(signal.ITIMER_PROF, seconds)
    signal.setitimer(signal.ITIMER_REAL, 10 * seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.setitimer(signal.ITIMER_REAL, 0)
        for s, handler in previous.items():
            signal.signal(s, handler)


def _cause(exc: BaseException) -> str:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "specc" in f.filename]
    where = (
        f"{Path(frames[-1].filename).name}:{frames[-1].lineno} {frames[-1].name}" if frames else "?"
    )
    return f"{type(exc).__name__} at {where}"


def _cli():
    """specc's CLI module, its command line built once: typer rebuilds the click command from the
    functions' signatures on every call (most of a case's time), so the harness calls the built
    command through `cli.main`, whose error mapping (exit codes, messages) is the one tested."""
    from specc.compiler import cli

    if not isinstance(cli.app, _Built):
        cli.app = _Built(typer.main.get_command(cli.app))
    return cli


class _Built:
    def __init__(self, command):
        self.command = command

    def __call__(self, *args, **kwargs):
        return self.command(*args, **kwargs)


def check_in_process(
    path: Path, args: list[str], measure_memory: bool = True, timeout: float = 30.0
) -> Outcome:
    """`specc check PATH ARGS` through the CLI's entry point in this process; an exit 3 is run
    again with SPECC_DEBUG=1 to name its root cause. A case past `timeout` s of CPU is exit -1."""
    cli = _cli()
    out, err = io.StringIO(), io.StringIO()
    if measure_memory:
        tracemalloc.start()
    start = time.process_time()
    try:
        with watchdog(timeout), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(["check", str(path), *args])
    except CaseTimeout as e:
        return Outcome(-1, out.getvalue(), err.getvalue(), time.process_time() - start, 0, str(e))
    except MemoryError:
        return Outcome(-1, "", "", time.process_time() - start, 0, "MemoryError")
    finally:
        cpu = time.process_time() - start
        peak = tracemalloc.get_traced_memory()[1] if measure_memory else 0
        if measure_memory:
            tracemalloc.stop()
    outcome = Outcome(code, out.getvalue(), err.getvalue(), cpu, peak)
    if measure_memory and cpu > RETIME_ABOVE_S:
        # tracemalloc slows allocation-heavy cases 4-5x (addition.yaml's generated data: 0.42 s
        # alone, 1.8-2.5 s traced): the CPU figure is the case's own, timed again untraced
        outcome.cpu_s = check_in_process(path, args, measure_memory=False, timeout=timeout).cpu_s
    if code == 3:
        os.environ["SPECC_DEBUG"] = "1"
        try:
            with (
                watchdog(timeout),
                contextlib.redirect_stdout(io.StringIO()),
                contextlib.redirect_stderr(io.StringIO()),
            ):
                cli.main(["check", str(path), *args])
        except Exception as e:  # noqa: BLE001 - naming the root cause is the point
            outcome.cause = _cause(e)
        except CaseTimeout:
            outcome.cause = "a hang on the rerun"
        finally:
            del os.environ["SPECC_DEBUG"]
    return outcome


def cli_args(args: list[str]) -> list[str]:
    """The arguments as a command line can carry them: no NUL, no lone surrogate."""
    return [
        a.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
        if any(c == "\x00" or "\ud800" <= c <= "\udfff" for c in a)
        else a
        for a in args
    ]


# Runs `specc check` as its own child and reports that child's rusage. A process forked from a
# large one (a pytest worker that has trained models: about 900 MB) inherits the parent's RSS as
# its peak (Linux keeps the old mm's high-water mark across exec), so the measured process must
# be forked from this small launcher, not from the caller.
LAUNCHER = """\
import os, subprocess, sys
proc = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(proc.pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(f"{os.waitstatus_to_exitcode(status)} {usage.ru_utime + usage.ru_stime} {usage.ru_maxrss}")
"""


def check_cli(path: Path, args: list[str]) -> Outcome:
    """The real `specc check` in a child process; CPU time and peak memory from its rusage."""
    specc = str(Path(sys.executable).with_name("specc"))
    env = {k: v for k, v in os.environ.items() if k != "SPECC_DEBUG"}
    with tempfile.TemporaryDirectory() as tmp:
        usage_file = Path(tmp) / "usage"
        with open(Path(tmp) / "out", "w+b") as out, open(Path(tmp) / "err", "w+b") as err:
            subprocess.run(
                [sys.executable, "-c", LAUNCHER, str(usage_file), specc, "check", str(path), *args],
                stdout=out,
                stderr=err,
                env=env,
                check=False,
            )
            out.seek(0)
            err.seek(0)
            code, cpu_s, maxrss_kb = usage_file.read_text().split()
            return Outcome(
                int(code),
                out.read().decode("utf-8", "replace"),
                err.read().decode("utf-8", "replace"),
                float(cpu_s),
                int(maxrss_kb) * 1024,
            )


def write_case(case: Case, folder: Path) -> Path:
    path = folder / f"spec{case.suffix}"
    path.write_text(case.text, encoding="utf-8", errors="surrogatepass")
    return path


# ----------------------------------------------------------------------------- `make fuzz`


def run_cases(first: int, last: int, seed: int, cli_every: int, memory_every: int) -> dict:
    """Cases first..last-1 of a seed: the figures of this share of a run."""
    limit = 4 * 2**30  # a case that runs away with memory fails here, not the machine
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    codes, kinds, causes, failures = Counter(), Counter(), Counter(), []
    figures = {"cpu": 0.0, "worst_cpu": 0.0, "worst_mem": 0, "cli": 0, "cli_cpu": 0.0, "cli_mem": 0}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        check_in_process(SPECS[0], [])  # imports and first-use costs are not a case's
        for i in range(first, last):
            case = make_case(random.Random(f"{seed}:{i}"))
            path = write_case(case, folder)
            o = check_in_process(path, case.args, measure_memory=i % memory_every == 0)
            codes[o.code] += 1
            kinds[case.kind] += 1
            figures["cpu"] += o.cpu_s
            figures["worst_cpu"] = max(figures["worst_cpu"], o.cpu_s)
            figures["worst_mem"] = max(figures["worst_mem"], o.peak_bytes)
            problems = o.problems(str(path))
            if cli_every and i % cli_every == 0:
                args = cli_args(case.args)
                c = check_cli(path, args)
                figures["cli"] += 1
                figures["cli_cpu"] = max(figures["cli_cpu"], c.cpu_s)
                figures["cli_mem"] = max(figures["cli_mem"], c.peak_bytes)
                if args == case.args and c.code != o.code:
                    problems.append(f"the CLI exits {c.code}, in-process {o.code}")
                problems += [p for p in c.problems(str(path)) if "budget" not in p]
                if c.cpu_s > CPU_BUDGET_S or c.peak_bytes > MEMORY_BUDGET:
                    problems.append(f"the CLI: {c.cpu_s:.2f} s CPU, {c.peak_bytes / 2**20:.0f} MB")
            for p in problems:
                causes[o.cause or p.split(":")[0]] += 1
                if len(failures) < 50:
                    failures.append(
                        {
                            "case": i,
                            "what": case.describe()[:300],
                            "problem": p[:300],
                            "stderr": o.stderr[-300:],
                        }
                    )
            if (i + 1 - first) % 1000 == 0:  # a running account, should the run be cut short
                line = {"share": [first, last], "done": i + 1 - first, "exits": dict(codes)}
                line |= {"problems": dict(causes), "cpu_s": round(figures["cpu"], 1)}
                line |= {"worst_cpu_s": round(figures["worst_cpu"], 3)}
                line |= {"worst_peak_mb": round(figures["worst_mem"] / 2**20, 1)}
                print(json.dumps(line), flush=True)
    return {"codes": codes, "kinds": kinds, "causes": causes, "failures": failures, **figures}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=1, help="processes, each a share of the cases")
    parser.add_argument("--share", default="0/1", help="K/N: run the K-th of N shares (a job)")
    parser.add_argument("--cli-every", type=int, default=500, help="every Nth case also by the CLI")
    parser.add_argument("--memory-every", type=int, default=10, help="every Nth case: tracemalloc")
    parser.add_argument("--json", type=Path, help="write the figures here")
    a = parser.parse_args(argv)
    started = time.perf_counter()
    k, n = map(int, a.share.split("/"))
    if a.jobs > 1:  # one process per share, each with its own figures, added up here
        with tempfile.TemporaryDirectory() as tmp:
            procs = [
                subprocess.Popen(
                    [sys.executable, __file__, *(argv if argv is not None else sys.argv[1:])]
                    + ["--jobs", "1", "--share", f"{j}/{a.jobs}", "--json", f"{tmp}/{j}.json"]
                )
                for j in range(a.jobs)
            ]
            codes = [p.wait() for p in procs]
            parts = [json.loads(Path(f"{tmp}/{j}.json").read_text())["raw"] for j in range(a.jobs)]
        if any(c not in (0, 1) for c in codes):
            print(f"a job failed: exit codes {codes}", file=sys.stderr)
            return 2
    else:
        first, last = a.cases * k // n, a.cases * (k + 1) // n
        part = run_cases(first, last, a.seed, a.cli_every, a.memory_every)
        parts = [{**part, **{key: dict(part[key]) for key in ("codes", "kinds", "causes")}}]
    total = {
        key: sum((Counter({str(c): v for c, v in p[key].items()}) for p in parts), Counter())
        for key in ("codes", "kinds", "causes")
    }
    figures = {
        "cases": sum(sum(p["codes"].values()) for p in parts),
        "seed": a.seed,
        "jobs": a.jobs,
        "wall_s": round(time.perf_counter() - started, 1),
        "cpu_s_total": round(sum(p["cpu"] for p in parts), 1),
        "cpu_s_mean_per_case": round(
            sum(p["cpu"] for p in parts) / max(sum(sum(p["codes"].values()) for p in parts), 1), 4
        ),
        "cpu_s_worst_case": round(max(p["worst_cpu"] for p in parts), 3),
        "peak_mb_worst_measured_case": round(max(p["worst_mem"] for p in parts) / 2**20, 1),
        "memory_measured_every": a.memory_every,
        "cli_runs": sum(p["cli"] for p in parts),
        "cli_cpu_s_worst": round(max(p["cli_cpu"] for p in parts), 3),
        "cli_peak_rss_mb_worst": round(max(p["cli_mem"] for p in parts) / 2**20, 1),
        "exit_codes": dict(sorted(total["codes"].items())),
        "kinds": dict(total["kinds"]),
        "problems": dict(total["causes"].most_common()),
        "first_failures": [f for p in parts for f in p["failures"]][:50],
        "raw": parts[0] if len(parts) == 1 else None,
    }
    print(json.dumps({k: v for k, v in figures.items() if k != "raw"}, indent=2))
    if a.json:
        a.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 1 if total["causes"] else 0


if __name__ == "__main__":
    sys.exit(main())
