"""`specc export DIR --quantize int8`: the faster of two int8 forms, measured here, behind an
accuracy guard.

Two candidates are made from model.onnx after ONNX Runtime's pre-processing (symbolic shape
inference and graph clean-up):

- **static** (QDQ): QuantizeLinear/DequantizeLinear pairs around convolutions and matrix
  products, weights int8 per output channel, activations uint8 with ranges calibrated on a seeded
  sample of the run's own training split. The ops between them that only move or compare values
  (pooling, ReLU, reshapes, residual adds) are quantized too, so ONNX Runtime fuses each pair
  into QLinearConv/QGemm/QLinearAdd and the activations stay int8 from one layer to the next
  (VNNI kernels where the CPU has them). Only the nodes of the main graph are touched.
- **dynamic**: int8 weights of MatMul/Gemm (and LSTM), activations quantized on the fly per
  call, no calibration; it also reaches inside a Scan's body.

Each candidate is scored against the float model through ONNX Runtime on the validation split
with the task's own metric (the guard: accuracy may drop at most `max_drop` points; an error,
or a language model's perplexity, may grow at most `max_increase` percent). The accepted ones
are timed against the float model, side by side at batch 1 and 64 on this machine, and the
fastest is written, with the choice and the measured speed-up in its metadata
(Meta.QUANTIZATION) and in quantization.json. A model whose int8 form is slower than the float
one is not written unless `allow_slower`. Nothing is written when it is refused.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from specc.runtime.contracts import IGNORE_INDEX, Meta

from .diagnostics import UserError
from .evaluate import evaluate
from .files import atomic_write
from .tasks import TASKS

DYNAMIC_OPS = ["MatMul", "Gemm", "LSTM"]
# The arithmetic quantized with calibrated ranges, and the ops that carry int8 values between
# them unchanged (or with an exact integer kernel), so no DequantizeLinear/QuantizeLinear pair is
# left between two layers. Measured on lenet5: with Conv/MatMul/Gemm alone a float MaxPool sat
# between the convolutions, 1.4x float at batch 64; with these, 1.8x.
STATIC_OPS = ["Conv", "MatMul", "Gemm"]
CARRY_OPS = [
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "Relu",
    "Clip",
    "Add",
    "Reshape",
    "Flatten",
    "Transpose",
    "Squeeze",
    "Unsqueeze",
    "Concat",
]
METHODS = ("static", "dynamic")
CALIBRATION_EXAMPLES = 256  # a few hundred examples of the training split
CALIBRATION_SEED = 0
BATCHES = (1, 64)  # the latency case and the throughput case
SLOWER_MARGIN = 0.05  # slower than float by more than this (a fraction) counts as slower
SECONDS_PER_BATCH = 3.0  # time spent measuring at each batch size
LIMIT_SLACK = 1e-9  # rounding of a change that sits on the guard's limit


def _quiet():
    logging.getLogger().setLevel(logging.ERROR)  # the quantizer logs advice per node


def _pre_process(source: Path, target: Path) -> Path:
    """ONNX Runtime's recommended pre-processing; the source itself where it cannot run."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    try:
        quant_pre_process(str(source), str(target))
    except Exception:  # symbolic shape inference does not know every graph
        return source
    return target


def dynamic_int8(source: Path, target: Path) -> None:
    """Pre-processing, then dynamic int8 weights of MatMul/Gemm/LSTM, inside subgraphs too."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    _quiet()
    pre = _pre_process(source, target.with_name(target.stem + ".pre.onnx"))
    quantize_dynamic(
        str(pre),
        str(target),
        weight_type=QuantType.QInt8,
        op_types_to_quantize=DYNAMIC_OPS,
        extra_options={"EnableSubgraph": True},
    )
    if pre != source:
        pre.unlink(missing_ok=True)


def static_int8(source: Path, target: Path, calibration: list[dict[str, np.ndarray]]) -> None:
    """Pre-processing, then QDQ: int8 weights per channel, uint8 activations calibrated (min-max)
    on the feeds in `calibration` (a list of batches, by input name)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter(calibration)

        def get_next(self):
            return next(self.batches, None)

    _quiet()
    pre = _pre_process(source, target.with_name(target.stem + ".pre.onnx"))
    quantize_static(
        str(pre),
        str(target),
        Reader(),
        quant_format=QuantFormat.QDQ,
        op_types_to_quantize=STATIC_OPS + CARRY_OPS,
        per_channel=True,
        activation_type=QuantType.QUInt8,  # u8 activations x s8 weights: the VNNI kernels' form
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
    )
    if pre != source:
        pre.unlink(missing_ok=True)


def int8_model(source: Path, target: Path, method: str = "dynamic", calibration=None) -> None:
    """One int8 form of `source` by name (bench/run.py makes both)."""
    if method == "static":
        static_int8(source, target, calibration)
    else:
        dynamic_int8(source, target)


# ----------------------------------------------------------------------------- the run's data


def _spec(run: Path) -> dict:
    try:
        doc = json.loads((run / "spec.json").read_text(encoding="utf-8"))
        return {**doc["spec"], "inputs": doc["inputs"]}
    except (OSError, ValueError, KeyError):
        raise UserError(f"{run} is not a folder written by `specc train` (no spec.json)") from None


def _split(
    run: Path, split: str, input_names: list[str]
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """A split of the run's data.npz as feeds of the graph's inputs (x, x1, ... in spec order),
    and its targets."""
    try:
        with np.load(run / "data.npz") as f, np.load(run / "splits.npz") as s:
            idx = s[split]
            arrays = [f["x"]] + [f[f"x{i}"] for i in range(1, len(input_names)) if f"x{i}" in f]
            y = f["y"][idx]
            xs = [a[idx] for a in arrays]
    except (OSError, KeyError) as e:
        raise UserError(f"{run}: cannot read the run's data.npz/splits.npz ({e})") from None
    if len(xs) != len(input_names):
        raise UserError(
            f"{run}: model.onnx takes {len(input_names)} inputs ({', '.join(input_names)}), "
            f"the run's data holds {len(xs)}; int8 needs the data to calibrate and check it"
        )
    if not len(y):
        raise UserError(f"the run has no {split} split to calibrate and check the int8 model on")
    feeds = {
        name: a.astype(np.float32) if np.issubdtype(a.dtype, np.floating) else a.astype(np.int64)
        for name, a in zip(input_names, xs, strict=True)
    }
    return feeds, y


def calibration_sample(
    feeds: dict[str, np.ndarray], n: int = CALIBRATION_EXAMPLES, seed: int = CALIBRATION_SEED
) -> dict[str, np.ndarray]:
    """A seeded sample of n examples (all of them when there are fewer)."""
    total = len(next(iter(feeds.values())))
    idx = np.sort(np.random.default_rng(seed).permutation(total)[: min(n, total)])
    return {k: v[idx] for k, v in feeds.items()}


def _batches(feeds: dict[str, np.ndarray], size: int = 64) -> list[dict[str, np.ndarray]]:
    n = len(next(iter(feeds.values())))
    return [{k: v[i : i + size] for k, v in feeds.items()} for i in range(0, n, size)]


def _rows(feeds: dict[str, np.ndarray], batch: int) -> dict[str, np.ndarray]:
    """The first `batch` examples, the sample repeated when it holds fewer."""
    n = len(next(iter(feeds.values())))
    idx = np.arange(batch) % n
    return {k: v[idx] for k, v in feeds.items()}


# ----------------------------------------------------------------------------- the guard


@dataclass
class Verdict:
    """What the guard found for one int8 graph."""

    metrics: dict  # the int8 graph's
    float_metrics: dict
    change: float  # accuracy points lost, or percent the error grew
    change_key: str  # accuracy_drop_points | error_increase_percent
    accepted: bool
    shown: str  # one line for the user
    max_abs_diff: float
    examples: int


def _lm_scores(logits: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Cross-entropy per token (padding ignored), its perplexity and next-token accuracy."""
    z = logits.astype(np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    mask = y != IGNORE_INDEX
    picked = np.take_along_axis(logp, np.where(mask, y, 0)[..., None], axis=-1)[..., 0]
    loss = float(-picked[mask].mean())
    accuracy = float((logits.argmax(axis=-1) == y)[mask].mean())
    return {"loss": loss, "perplexity": math.exp(loss), "accuracy": accuracy}


def guard_scores(run: Path, spec: dict, graph: Path) -> tuple[dict, np.ndarray, int]:
    """(metrics, outputs, examples) of one graph of the run on its validation split, with the
    task's own metric. Single-input classifiers, regressors and autoencoders go through
    `specc evaluate`; language models and models with several inputs are scored here."""
    import specc.runtime as sr

    from .tasks import TASKS

    task = TASKS[spec["task"]]
    if task.text_corpus:  # a language model: perplexity over every position
        model = sr.load(graph, device="cpu", cache=False)
        feeds, y = _split(run, "val", [i.name for i in model.inputs])
        out = model.run_batched(feeds, 64)[model.outputs[0].name]
        return _lm_scores(out, y), out, len(y)
    if task.evaluate_refusal:
        raise UserError(
            f"int8 for task: {spec['task']} is not there yet: its guard needs the task's own "
            "score through the graphs it serves"
        )
    if len(spec["inputs"]) == 1:
        r = evaluate(run, "val", device="cpu", model_file=graph, keep_outputs=True)
        return r["metrics"], r.pop("outputs"), r["examples"]
    model = sr.load(graph, device="cpu", cache=False)
    feeds, y = _split(run, "val", [i.name for i in model.inputs])
    out = model.run_batched(feeds, 1024)[model.outputs[0].name]
    y = y.astype(task.target_dtype or y.dtype)
    return task.score(out, y, model.output_kind, spec["train"]), out, len(y)


def judge(fp: dict, q: dict, max_drop: float, max_increase: float) -> tuple[str, float, bool, str]:
    """(figure name, change, accepted, one line) of int8 metrics `q` against float `fp`. The
    limits are inclusive: 0.9 - 0.895 is 0.50000000000000044 points in floating point."""
    drop_ok, increase_ok = max_drop + LIMIT_SLACK, max_increase + LIMIT_SLACK
    if "perplexity" in fp:
        change = 100 * (q["perplexity"] / max(fp["perplexity"], 1e-12) - 1)
        return (
            "error_increase_percent",
            change,
            change <= increase_ok,
            f"validation perplexity {fp['perplexity']:.4g} -> {q['perplexity']:.4g} "
            f"({change:+.1f}%, limit {max_increase}%)",
        )
    if "accuracy" in fp:
        change = 100 * (fp["accuracy"] - q["accuracy"])
        return (
            "accuracy_drop_points",
            change,
            change <= drop_ok,
            f"validation accuracy {fp['accuracy']:.4f} -> {q['accuracy']:.4f} "
            f"({-change:+.2f} points; a drop of at most {max_drop} is allowed)",
        )
    key = "mae" if "mae" in fp else "loss"
    change = 100 * (q[key] / max(fp[key], 1e-12) - 1)
    return (
        "error_increase_percent",
        change,
        change <= increase_ok,
        f"validation {key} {fp[key]:.4g} -> {q[key]:.4g} ({change:+.1f}%, limit {max_increase}%)",
    )


# ----------------------------------------------------------------------------- speed


def measure(
    graphs: dict[str, Path],
    feeds: dict[str, np.ndarray],
    batches=BATCHES,
    seconds: float = SECONDS_PER_BATCH,
) -> dict[str, dict[int, float]]:
    """Median ms per call of each graph at each batch size, through specc.runtime on the CPU.

    As bench/run.py: the graphs take turns in blocks of calls, in an order shuffled every round
    (seeded), the first call of each block dropped (thread pools spin after a call and tax
    whoever runs next); rounds go on until `seconds` have passed at that batch size.
    """
    import specc.runtime as sr

    models = {k: sr.load(p, device="cpu", cache=False) for k, p in graphs.items()}
    order, shuffle = list(models), random.Random(0).shuffle
    result: dict[str, dict[int, float]] = {k: {} for k in models}
    for batch in batches:
        x = _rows(feeds, batch)
        calls = {k: (lambda m=m: m.run(**x)) for k, m in models.items()}
        for fn in calls.values():
            for _ in range(3):
                fn()
        times = {k: [] for k in calls}
        end = time.perf_counter() + seconds
        rounds = 0
        while rounds < 3 or (time.perf_counter() < end and rounds < 200):
            shuffle(order)
            for k in order:
                for i in range(6):
                    start = time.perf_counter()
                    calls[k]()
                    if i:
                        times[k].append((time.perf_counter() - start) * 1e3)
            rounds += 1
        for k, v in times.items():
            result[k][batch] = statistics.median(v)
    return result


@dataclass
class Choice:
    method: str | None  # the int8 form to write; None when no candidate was measured
    speedup: dict[int, float]  # float time / int8 time, per batch size
    slower_at: list[int]  # batch sizes where the chosen form is slower than float


def choose(
    times: dict[str, dict[int, float]], accepted: list[str], margin: float = SLOWER_MARGIN
) -> Choice:
    """The int8 form to write among `accepted`: of those not slower than float at any batch size
    (by more than `margin`), the one with the best geometric-mean speed-up; when every one is
    slower somewhere, the best of them, with where it is slower. `times` holds "float" and each
    candidate as {batch: ms}."""
    if not accepted:
        return Choice(None, {}, [])
    speedups = {m: {b: times["float"][b] / times[m][b] for b in times["float"]} for m in accepted}
    slower = {m: [b for b, s in sp.items() if s < 1 / (1 + margin)] for m, sp in speedups.items()}

    def rank(m: str) -> tuple[bool, float]:
        return (not slower[m], statistics.fmean(math.log(s) for s in speedups[m].values()))

    best = max(accepted, key=rank)  # max keeps the first of equals: METHODS order
    return Choice(best, speedups[best], slower[best])


# ----------------------------------------------------------------------------- the command


def _stamp(graph: Path, source: Path, extra: dict[str, str]) -> None:
    """The source's specc metadata, and `extra`, on the quantized graph."""
    import onnx

    proto = onnx.load(str(graph))
    meta = {p.key: p.value for p in onnx.load(str(source), load_external_data=False).metadata_props}
    meta.update(extra)
    del proto.metadata_props[:]
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(graph))


def _times_line(times: dict, method: str) -> str:
    return "; ".join(
        f"batch {b}: {times[method][b]:.3f} ms int8 ({method}) against {times['float'][b]:.3f} ms float"
        for b in times["float"]
    )


def quantize(
    run: Path,
    max_drop: float = 0.5,
    max_increase: float = 5.0,
    allow_drop: bool = False,
    allow_slower: bool = False,
    log=print,
    timer: Callable[[dict, dict], dict] | None = None,
) -> dict:
    """Make both int8 forms, guard them, time them, write the fastest accepted one as
    model.int8.onnx with quantization.json. `timer(graphs, feeds)` stands in for `measure` (tests
    inject times: timings themselves are never asserted)."""
    import specc.runtime as sr

    run = Path(run)
    source = run / "model.onnx"
    if not source.is_file():
        raise UserError(f"no model to quantize: {source} does not exist (run `specc train` first)")
    spec = _spec(run)
    target = run / "model.int8.onnx"
    model = sr.load(source, device="cpu", cache=False)
    task = model.task
    if TASKS[task].evaluate_refusal:  # the guard compares scores: a model needs some
        raise UserError(
            f"an int8 model is kept only when it scores like the float one on the validation "
            f"split, and this {task} model has no such score: {TASKS[task].evaluate_refusal}"
        )
    input_names = [i.name for i in model.inputs]
    feeds, _ = _split(run, "train", input_names)
    sample = calibration_sample(feeds)
    with tempfile.TemporaryDirectory() as tmp:
        graphs, problems = {}, {}
        for method in METHODS:
            path = Path(tmp) / f"{method}.onnx"
            try:
                int8_model(source, path, method, _batches(sample))
                sr.load(path, device="cpu", cache=False)  # ONNX Runtime takes it
            except Exception as e:  # a form ONNX Runtime cannot make or run for this graph
                problems[method] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
                continue
            graphs[method] = path
        if not graphs:
            raise UserError(
                "no int8 form of this model could be made: "
                + "; ".join(f"{k}: {v}" for k, v in problems.items())
            )
        fp, fp_out, examples = guard_scores(run, spec, source)
        verdicts = {}
        for method, path in graphs.items():
            q, q_out, _ = guard_scores(run, spec, path)
            key, change, ok, shown = judge(fp, q, max_drop, max_increase)
            diff = float(np.max(np.abs(fp_out.astype(np.float64) - q_out)))
            verdicts[method] = Verdict(q, fp, change, key, ok, shown, diff, examples)
        accepted = [m for m, v in verdicts.items() if v.accepted]
        if not accepted and not allow_drop:
            raise UserError(
                "int8 model refused: "
                + "; ".join(f"{m}: {v.shown}" for m, v in verdicts.items())
                + "; nothing written (pass --allow-drop to keep it anyway)"
            )
        contenders = accepted or list(verdicts)
        times = (timer or measure)({"float": source} | {m: graphs[m] for m in contenders}, sample)
        choice = choose(times, contenders)
        method = choice.method
        verdict = verdicts[method]
        if choice.slower_at and not allow_slower:
            raise UserError(
                f"int8 model refused: it is slower than the float model on this machine "
                f"({_times_line(times, method)}); nothing written (pass --allow-slower to keep it anyway)"
            )
        record = {
            "method": method,
            "speedup": {str(b): round(s, 3) for b, s in choice.speedup.items()},
        }
        _stamp(
            graphs[method],
            source,
            {Meta.QUANTIZED: "int8", Meta.QUANTIZATION: json.dumps(record)},
        )
        figures = {
            "examples": verdict.examples,
            "float": verdict.float_metrics,
            "int8": verdict.metrics,
            "max_abs_diff": verdict.max_abs_diff,
            "bytes": {"float": source.stat().st_size, "int8": graphs[method].stat().st_size},
            verdict.change_key: verdict.change,
            "accepted": verdict.accepted,
            "method": method,
            "speedup": record["speedup"],
            "ms": {
                "float": {str(b): t for b, t in times["float"].items()},
                "int8": {str(b): t for b, t in times[method].items()},
            },
            "slower": bool(choice.slower_at),
            "calibration": {
                "split": "train",
                "examples": len(next(iter(sample.values()))),
                "seed": CALIBRATION_SEED,
                "method": "minmax",
            },
            "candidates": {
                m: {
                    "metrics": v.metrics,
                    verdict.change_key: v.change,
                    "accepted": v.accepted,
                    "max_abs_diff": v.max_abs_diff,
                    "ms": {str(b): t for b, t in times[m].items()} if m in times else None,
                    "speedup": (
                        {str(b): times["float"][b] / t for b, t in times[m].items()}
                        if m in times
                        else None
                    ),
                }
                for m, v in verdicts.items()
            }
            | {m: {"error": p} for m, p in problems.items()},
        }
        os.replace(graphs[method], target)
    if not verdict.accepted:
        log(f"warning: keeping the int8 model although {verdict.shown}")
    if choice.slower_at:
        log(f"warning: keeping the int8 model although it is slower ({_times_line(times, method)})")
    atomic_write(run / "quantization.json", json.dumps(figures, indent=2) + "\n")
    speed = ", ".join(f"{s:.2f}x at batch {b}" for b, s in choice.speedup.items())
    log(
        f"wrote {target} ({method} int8, {figures['bytes']['int8']:,} bytes, float "
        f"{figures['bytes']['float']:,}): {verdict.shown}; max |int8 - float| on validation "
        f"outputs {verdict.max_abs_diff:.3g}; speed against float on this machine: {speed}"
    )
    return figures
