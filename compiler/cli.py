"""The `specc` command line. Heavy imports (torch, onnx) happen inside the commands that need them,
so `specc check` stays fast. Every user mistake ends as a short message and a non-zero exit;
a Python traceback appears only with SPECC_DEBUG=1.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperArgument, TyperCommand

from .diagnostics import SpecError, UserError


class _Command(TyperCommand):
    """Usage lines name arguments as man pages do (`specc check [OPTIONS] SPEC`), not as typer's
    `{spec}`."""

    def collect_usage_pieces(self, ctx):
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                name = (param.metavar or param.name.upper()) + ("..." if param.nargs != 1 else "")
                pieces.append(name if param.required else f"[{name}]")
            else:
                pieces += param.get_usage_pieces(ctx)
        return pieces


class _Typer(typer.Typer):
    def command(self, *args, cls=None, **kwargs):
        return super().command(*args, cls=cls or _Command, **kwargs)


app = _Typer(
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish, PowerShell)
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="specc: declarative model specs -> checked shapes -> readable PyTorch -> ONNX -> ONNX Runtime.",
)

SpecArg = Annotated[
    Path,
    typer.Argument(metavar="SPEC", help="A .yaml/.yml or .toml spec file.", show_default=False),
]
RunArg = Annotated[
    Path,
    typer.Argument(metavar="DIR", help="A folder written by `specc train`.", show_default=False),
]


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            print(f"specc {version('specc')}")
        except PackageNotFoundError:  # run from a source tree that is not installed
            print("specc (not installed)")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print specc's version and exit."
        ),
    ] = False,
) -> None:
    """specc: declarative model specs -> checked shapes -> readable PyTorch -> ONNX -> ONNX Runtime."""


SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="KEY=VALUE",
        help="Override one spec value by dotted path, e.g. --set train.optimizer.lr=0.01 (repeatable); KEY=null clears a value.",
    ),
]
UnsetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--unset",
        metavar="KEY",
        help="Remove a key or list item by dotted path, e.g. --unset train.target (repeatable; before any --set).",
    ),
]


PrintSpecOpt = Annotated[
    bool,
    typer.Option(
        "--print-spec",
        help="Print the resolved spec (defaults filled in, --set applied) as YAML and stop.",
    ),
]


def _compile(
    spec: Path,
    overrides: list[str] | None = None,
    unsets: list[str] | None = None,
    print_spec: bool = False,
):
    from .overrides import unset
    from .pipeline import compile_file

    compiled = compile_file(spec, [*map(unset, unsets or ()), *(overrides or ())])
    if print_spec:  # what spec.json records: a spec of its own that compiles to the same model
        import yaml

        from .pipeline import spec_doc

        text = yaml.safe_dump(
            spec_doc(compiled.parsed),
            sort_keys=False,
            allow_unicode=True,
            default_flow_style=None,
            width=100,
        )
        print(
            f"# {spec}"
            + "".join(f" --unset {u}" for u in unsets or ())
            + "".join(f" --set {o}" for o in overrides or ())
            + "\n"
            + text,
            end="",
        )
        raise typer.Exit()
    return compiled


@app.command()
def check(
    spec: SpecArg,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    overrides: SetOpt = None,
    unsets: UnsetOpt = None,
    print_spec: PrintSpecOpt = False,
    dims: Annotated[
        list[str] | None,
        typer.Option(
            "--dim",
            metavar="NAME=SIZE",
            help="A size for a named dim, for the FLOPs (e.g. --dim time=64; default 1).",
        ),
    ] = None,
):
    """Validate a spec and infer every shape and FLOPs per example (no torch involved)."""
    from .flops import dynamic_dims, layer_flops
    from .layers.base import fmt_shape

    try:
        compiled = _compile(spec, overrides, unsets, print_spec)
    except SpecError as e:
        if as_json:  # the diagnostics on stdout for tools; the same lines on stderr for people
            doc = {"ok": False, "diagnostics": [d.as_json() for d in e.diagnostics]}
            print(json.dumps(doc, indent=2))
        raise
    from .weights import check_init

    check_init(compiled)  # train.init's file against the model (torch, only when there is one)
    inf, parsed = compiled.inferred, compiled.parsed
    sizes = {d: 1 for d in dynamic_dims(parsed)} | _sizes(dims)
    flops = layer_flops(parsed, inf, sizes)
    rows = [
        {
            "name": name,
            "type": "input",
            "section": "inputs",
            "output_shape": ["batch", *inp.shape],
            "params": 0,
            "flops": 0,
        }
        for name, inp in parsed.inputs.items()
    ]
    for i in inf.order:
        layer = parsed.layers[i]
        rows.append(
            {
                "name": layer.name,
                "type": layer.type,
                "section": parsed.section(i),
                "output_shape": ["batch", *inf.out_shapes[layer.name]],
                "params": inf.params[i],
                "flops": flops[i],
            }
        )
    total = sum(flops.values())
    if as_json:
        doc = {
            "ok": True,
            "task": compiled.task.name,
            "layers": rows,
            "total_params": inf.total_params,
            "flops": {"per_example": total, "dims": sizes},  # a multiply-add counts 2
        }
        print(json.dumps(doc, indent=2))
        return
    sections = len({r["section"] for r in rows}) > 2  # inputs and more than one layer section
    header = ("layer", "type", "output shape", "params", "FLOPs")
    header += ("section",) if sections else ()
    table = [header] + [
        (r["name"], r["type"], fmt_shape(tuple(r["output_shape"][1:])), f"{r['params']:,}")
        + (_si(r["flops"]),)
        + ((r["section"],) if sections else ())
        for r in rows
    ]
    widths = [max(len(row[c]) for row in table) for c in range(len(header))]
    for k, row in enumerate(table):
        print(
            "  ".join(
                cell.rjust(w) if c in (3, 4) else cell.ljust(w)
                for c, (cell, w) in enumerate(zip(row, widths, strict=True))
            ).rstrip()
        )
        if k == 0:
            print("  ".join("-" * w for w in widths))
    print(f"total parameters: {inf.total_params:,}")
    at = f" at {', '.join(f'{d}={n}' for d, n in sizes.items())}" if sizes else ""
    print(f"FLOPs per example: {_si(total)}{at}")
    print(f"{spec}: ok")


def _sizes(dims: list[str] | None) -> dict[str, int]:
    """--dim NAME=SIZE values."""
    out = {}
    for text in dims or []:
        name, _, value = text.partition("=")
        # ASCII digits only ('²' is a digit to str.isdigit, not to int), and a size a tensor
        # axis can have (a longer one overflowed the FLOPs' float formatting: exit 3)
        if not name or not (value.isascii() and value.isdigit()) or not 1 <= int(value) < 2**31:
            raise UserError(
                f"--dim {text}: expected NAME=SIZE with a size from 1 to {2**31 - 1}, e.g. time=64"
            )
        out[name] = int(value)
    return out


def _si(n: int) -> str:
    """1234567 -> 1.23 M."""
    for size, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= size:
            return f"{n / size:.3g} {suffix}"
    return str(n)


@app.command()
def build(
    spec: SpecArg,
    out: Annotated[
        Path | None, typer.Option("-o", "--out", help="Output folder (default: build/<name>/).")
    ] = None,
    verify: Annotated[
        bool, typer.Option(help="Export the fresh model and check ONNX Runtime against PyTorch.")
    ] = True,
    overrides: SetOpt = None,
    unsets: UnsetOpt = None,
    print_spec: PrintSpecOpt = False,
):
    """Generate model.py, train.py and spec.json (deterministic, formatted, standalone)."""
    from . import driver

    compiled = _compile(spec, overrides, unsets, print_spec)
    driver.build(compiled, out or driver.default_out(compiled, "build"), verify=verify)


@app.command()
def train(
    spec: SpecArg,
    out: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--out",
            help="Output folder (default: a new runs/<name>/, runs/<name>-2/, ...; with --resume or --overwrite the newest).",
        ),
    ] = None,
    overrides: SetOpt = None,
    unsets: UnsetOpt = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue from OUT/checkpoints/last.pt.")
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace a run already in OUT.")
    ] = False,
    nproc: Annotated[
        int,
        typer.Option("--nproc", min=1, help="Processes (DistributedDataParallel via torchrun)."),
    ] = 1,
    quiet: Annotated[
        bool, typer.Option("--quiet", help="No progress bar or per-epoch lines.")
    ] = False,
    track: TrackOpt = None,
    tracking_uri: TrackingUriOpt = None,
    print_spec: PrintSpecOpt = False,
):
    """Build, train with the generated train.py, export model.onnx and verify it against PyTorch."""
    from . import driver

    compiled = _compile(spec, overrides, unsets, print_spec)
    how = _tracking(track, tracking_uri)
    report = driver.train(
        compiled,
        out or driver.default_out(compiled, "runs", fresh=not (resume or overwrite)),
        quiet=quiet,
        resume=resume,
        overwrite=overwrite,
        nproc=nproc,
        track=how,
    )
    shown = ", ".join(
        f"{k} {v:.4f}" for k, v in report["metrics"].items() if k.startswith(("val_", "test_"))
    )
    print(
        f"done in {report['wall_seconds']:.1f}s: best epoch {report['best_epoch']} of {report['epochs_run']}: {shown}"
    )


TrackOpt = Annotated[
    str | None,
    typer.Option(
        "--track",
        help="mlflow: log the run to MLflow; none: do not (default: the spec's train.track).",
    ),
]
TrackingUriOpt = Annotated[
    str | None,
    typer.Option(
        "--tracking-uri",
        help="MLflow store (implies --track mlflow; default: MLFLOW_TRACKING_URI, else sqlite:///runs/mlflow/mlflow.db).",
    ),
]


def _tracking(track: str | None, uri: str | None):
    """What --track and --tracking-uri ask of driver.train."""
    if track not in (None, "mlflow", "none"):
        raise UserError(f"--track {track}: use mlflow or none")
    if track == "none" or (track is None and uri is None):
        return track
    from .tracking import Tracking

    return Tracking(uri=uri)


@app.command()
def tune(
    spec: SpecArg,
    params: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            metavar="KEY=DIST",
            help="A spec value to search: loguniform(a,b), uniform(a,b), int(a,b[,step]), logint(a,b) or choice(v1,v2,...), e.g. --param train.optimizer.lr=loguniform(1e-4,1e-1) (repeatable; adds to the spec's tune.params or replaces one).",
        ),
    ] = None,
    trials: Annotated[
        int | None,
        typer.Option(
            "--trials",
            min=1,
            help="Finished trials the study should hold (default: tune.trials, 20).",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("-o", "--out", help="Study folder (default: runs/<name>-study/)."),
    ] = None,
    overrides: SetOpt = None,
    metric: Annotated[
        str | None,
        typer.Option(
            help="What a trial scores, e.g. val_accuracy (default: tune.metric, train.monitor)."
        ),
    ] = None,
    direction: Annotated[
        str | None,
        typer.Option(
            help="minimize or maximize (default: tune.direction, else by the metric: a loss down, accuracy up)."
        ),
    ] = None,
    storage: Annotated[
        str | None,
        typer.Option(
            help="Optuna storage URL shared by several processes or machines (default: sqlite:///STUDY/study.db)."
        ),
    ] = None,
    study: Annotated[
        str | None, typer.Option("--study", help="Study name in the storage (default: <name>).")
    ] = None,
    sampler: Annotated[str, typer.Option(help="tpe or random.")] = "tpe",
    pruner: Annotated[
        str,
        typer.Option(
            help="median (from epoch 3, or a quarter of train.epochs), hyperband or none."
        ),
    ] = "median",
    seed: Annotated[
        int | None, typer.Option(help="Seed the sampler (one process: a repeatable search).")
    ] = None,
    track: TrackOpt = None,
    tracking_uri: TrackingUriOpt = None,
):
    """Search hyperparameters with Optuna; each trial is a run folder in the study folder. The
    same command again continues the study; several processes may share it."""
    from . import tune as tuning

    if sampler not in ("tpe", "random"):
        raise UserError(f"--sampler {sampler}: use tpe or random")
    if pruner not in ("median", "hyperband", "none"):
        raise UserError(f"--pruner {pruner}: use median, hyperband or none")
    if track not in (None, "mlflow", "none"):
        raise UserError(f"--track {track}: use mlflow or none")
    tuning.tune(
        tuning.Options(
            spec=spec,
            params=params or [],
            trials=trials,
            out=out,
            overrides=tuple(overrides or ()),
            metric=metric,
            direction=direction,
            storage=storage,
            study=study,
            sampler=sampler,
            pruner=pruner,
            seed=seed,
            track=track,
            tracking_uri=tracking_uri,
        )
    )


@app.command()
def runs(
    folder: Annotated[Path, typer.Argument(help="A folder of runs (or a study folder).")] = Path(
        "runs"
    ),
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
):
    """List runs: spec, overrides, best metric, epochs, status (running, finished, interrupted,
    pruned, diverged, failed, killed) and time."""
    from . import runs as run_list

    if as_json:
        found, studies = run_list.find_runs(folder)
        doc = {"runs": [r.as_json() for r in found], "studies": [str(p) for p in studies]}
        print(json.dumps(doc, indent=2, default=str))
        return
    print(run_list.list_runs(folder))


@app.command()
def compare(
    run_folders: Annotated[
        list[Path], typer.Argument(help="Run folders to compare.", show_default=False)
    ],
    plot: Annotated[
        Path, typer.Option("-o", "--plot", help="Their curves on one plot (PNG).")
    ] = Path("compare.png"),
):
    """Metrics side by side (the best of each row marked *), the settings that differ, and
    every run's curves on one plot."""
    from . import runs as run_list

    if len(run_folders) < 2:
        raise UserError("give two or more run folders to compare")
    print(run_list.compare(run_folders, plot))


@app.command()
def evaluate(
    run: RunArg,
    data: Annotated[
        str | None,
        typer.Option(
            "--data",
            help="A split of the run: train, val, test (default: test if the run has one, else "
            "val); or a .npz (x, y), a table like the spec's (.csv, .parquet, a saved datasets "
            "folder), an image folder (a sub-folder per class), a .npy of inputs (autoencoders); "
            "a text file (language models), .jsonl/.csv/.tsv of texts and labels (text "
            "classifiers), source<TAB>target lines (seq2seq).",
        ),
    ] = None,
    beam: Annotated[
        int | None,
        typer.Option(
            min=1, help="seq2seq: decode with beam search of this width (default greedy)."
        ),
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
):
    """Score a trained model through ONNX Runtime: loss and metrics as train.py defines them (a
    confusion matrix for classifiers, perplexity for token models, decoded exact match for
    seq2seq, the ELBO for a VAE)."""
    from . import evaluate as ev

    decode = {"method": "beam", "beam_size": beam} if beam else {"method": "greedy"}
    result = ev.evaluate(run, data, device=device, decode=decode)
    print(json.dumps(result, indent=2) if as_json else ev.format_result(result))


@app.command()
def predict(
    model: Annotated[
        Path,
        typer.Argument(
            metavar="MODEL",
            help="A model.onnx, or a folder written by `specc train`.",
            show_default=False,
        ),
    ],
    input: Annotated[
        list[str],
        typer.Option(
            "--input",
            "-i",
            metavar="FILE",
            help="What to predict for: an image or a folder of images, a .csv of rows, lines of "
            "text (.txt, .jsonl, '-' for stdin) for a text model, a .npy (batch first) or a .npz "
            "(arrays by input name); or NAME=FILE once per input of a multi-input model.",
        ),
    ],
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
):
    """Run a model through ONNX Runtime on your inputs and print its predictions (pictures and
    rows prepared as the run's data stage prepared its own)."""

    import specc.runtime as sr

    from . import inputs

    m = sr.load(model, device=device)
    folder = m.path.parent  # a model that answers through its other graphs says which command
    elsewhere = (
        f"specc translate {folder} --input TEXT"
        if (folder / "encoder.onnx").is_file() and (folder / "step.onnx").is_file()
        else f"specc sample {folder} --prompt TEXT"
        if (folder / "step.onnx").is_file()
        else f"specc sample {folder}"
        if (folder / "generator.onnx").is_file()
        else None
    )
    if elsewhere is not None and m.path.name == "model.onnx":
        raise UserError(
            f"{model} holds a {m.task} model, which answers through its other graphs: "
            f"use {elsewhere}"
        )
    # A piece at a time (a folder of images streams through), each printed as it comes; --json
    # writes one array, opened before the first piece and closed after the last.
    count = 0
    for feeds, names in inputs.pieces(input, m):
        output = m.run_batched(m.check_inputs(feeds), 256)
        output = output[m.outputs[0].name] if isinstance(output, dict) else output
        if as_json:
            items = _prediction_items(m, output, names, count)
            print(
                "\n".join(("[" if i + count == 0 else ",") + item for i, item in enumerate(items))
            )
        else:
            print("\n".join(_prediction_lines(m, output, names)))
        count += len(output)
    if as_json:
        print("[]" if not count else "]")


def _prediction_lines(model, output, names: list[str] | None) -> list[str]:
    """A line per example: its predictions (labels and scores) or its output's values, after
    the example's file name when it came from one."""
    import numpy as np

    import specc.runtime as sr

    result = model.predictions_from(output)
    if isinstance(result, sr.Predictions):  # the task answers with labels
        lines = result.lines()
        if names is None:
            return lines
        return [f"{n}\t{line.split(chr(9), 1)[1]}" for n, line in zip(names, lines, strict=True)]
    values = [" ".join(f"{v:.6g}" for v in np.ravel(row)) for row in np.asarray(output)]
    return values if names is None else [f"{n}\t{v}" for n, v in zip(names, values, strict=True)]


def _prediction_items(model, output, names: list[str] | None, start: int) -> list[str]:
    """The JSON items of the examples numbered from `start`: {index, input?, predictions} rows
    for a task that answers with labels, else each example's output as nested lists."""
    import numpy as np

    import specc.runtime as sr

    result = model.predictions_from(output)
    if not isinstance(result, sr.Predictions):
        return [json.dumps(row.tolist()) for row in np.asarray(output)]
    rows = result.rows()
    if names is not None:  # pictures read from files: each row says which
        rows = [{"input": n, **row} for n, row in zip(names, rows, strict=True)]
    return [json.dumps({"index": start + i, **row}) for i, row in enumerate(rows)]


@app.command()
def sample(
    model: Annotated[
        Path,
        typer.Argument(
            metavar="DIR",
            help="A `specc train` folder of a language model (step.onnx), a VAE or a GAN.",
            show_default=False,
        ),
    ],
    prompt: Annotated[
        str | None, typer.Option("--prompt", "-p", help="Text to continue (language models).")
    ] = None,
    n: Annotated[
        int | None,
        typer.Option("-n", help="Tokens to generate (default 200), or images (default 64)."),
    ] = None,
    temperature: Annotated[
        float, typer.Option("--temperature", "-t", help="0: greedy; higher: more varied.")
    ] = 1.0,
    top_k: Annotated[
        int | None, typer.Option("--top-k", help="Sample from the k likeliest tokens.")
    ] = None,
    top_p: Annotated[
        float | None, typer.Option("--top-p", help="Sample from the smallest set holding p.")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for repeatable samples.")] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Where to write: the image grid (default DIR/samples.png), or the text "
            "(default: printed).",
        ),
    ] = None,
    scale: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=32,
            help="Image grids: draw each pixel this many times over (default: "
            "tiles of about 64 pixels).",
        ),
    ] = None,
    columns: Annotated[
        int | None, typer.Option(min=1, help="Image grids: tiles per row (default: square).")
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
):
    """Generate through ONNX Runtime: text from a language model, an image grid from a VAE or a GAN."""
    import specc.runtime as sr

    def images(what: str, draw) -> None:
        text_only = {
            "--prompt": prompt is not None,
            "--top-k": top_k is not None,
            "--top-p": top_p is not None,
            "--temperature": temperature != 1.0,
        }
        given = [flag for flag, on in text_only.items() if on]
        if given:
            raise UserError(
                f"{model} holds {what}, which draws pictures from noise: {', '.join(given)} "
                "applies to language models (use -n, --seed, --scale, -o)"
            )
        pictures = draw(64 if n is None else n, seed)
        side = max(pictures.shape[-2:]) if pictures.ndim >= 3 else pictures.shape[-1]
        target = output or model / "samples.png"
        sr.save_grid(pictures, target, columns, scale or max(1, min(16, round(64 / side))))
        if output is None:  # in the run folder: --overwrite removes it with the run
            from .run_folder import RunFolder

            if RunFolder(model).is_marked():
                RunFolder(model).record(target)
        print(f"wrote {target}: {len(pictures)} samples of {what}")

    if model.is_dir() and (model / "generator.onnx").is_file():
        return images("a GAN", sr.Generator(model, device=device).sample)
    if model.is_dir() and (model / "encoder.onnx").is_file() and (model / "step.onnx").is_file():
        how = (
            f"specc translate {model} --image PICTURE"
            if sr.Seq2Seq(model, device="cpu").source_vocab is None
            else f"specc translate {model} --input TEXT"
        )
        raise UserError(
            f"{model} holds a seq2seq model: it writes a target for a source; use {how} "
            "(add --sample to draw instead of the likeliest)"
        )
    if model.is_dir() and (model / "decoder.onnx").is_file():
        return images("a VAE", sr.Autoencoder(model, device=device).sample)
    if model.is_dir() and not (model / "step.onnx").is_file() and (model / "model.onnx").is_file():
        task = sr.load(model, device="cpu").task
        raise UserError(
            f"{model} holds a {task} model, which has nothing to sample; sampling needs a "
            "language model (task: language_model), a VAE (task: autoencoder with latent:) or a GAN"
        )
    if scale is not None or columns is not None:
        raise UserError("--scale and --columns apply to image grids (a VAE or a GAN)")
    lm = sr.LanguageModel(model, device=device)
    n = 200 if n is None else n
    text = lm.generate(prompt or "", n, temperature, top_k, top_p, seed)
    if output is None:
        print(text)
    else:
        output.write_text(text + "\n", encoding="utf-8")
        print(f"wrote {output}: {n} tokens")


@app.command()
def translate(
    model: Annotated[
        Path,
        typer.Argument(
            metavar="DIR", help="A `specc train` folder of a seq2seq model.", show_default=False
        ),
    ],
    text: Annotated[
        list[str] | None, typer.Option("--input", "-i", help="A source text (repeatable).")
    ] = None,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="Sources, one per line ('-': stdin).")
    ] = None,
    image: Annotated[
        list[Path] | None,
        typer.Option(
            "--image",
            metavar="PICTURE",
            help="A picture, or a folder of pictures, for a model whose source is an image "
            "(captioning; repeatable).",
        ),
    ] = None,
    beam: Annotated[
        int | None, typer.Option("--beam", help="Beam search with this many beams.")
    ] = None,
    length_penalty: Annotated[
        float,
        typer.Option(help="Beam: divide log-probabilities by ((5 + length) / 6) ** this."),
    ] = 0.0,
    sample: Annotated[
        bool, typer.Option("--sample", help="Sample each token instead of the likeliest.")
    ] = False,
    temperature: Annotated[
        float,
        typer.Option(
            "--temperature", "-t", help="--sample: divide the logits by this (lower: surer)."
        ),
    ] = 1.0,
    top_k: Annotated[
        int | None, typer.Option("--top-k", help="--sample: draw from the k likeliest tokens.")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for repeatable samples.")] = None,
    max_len: Annotated[
        int | None, typer.Option(help="Most tokens to write (default: from the training data).")
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Sources decoded together.")] = 64,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
):
    """Decode sources with a seq2seq model through ONNX Runtime: one output line per input
    (text sources, or pictures with --image)."""
    import numpy as np

    import specc.runtime as sr

    if sum(x is not None for x in (text, file, image)) != 1:
        raise UserError(
            "give the sources with --input TEXT (repeatable), --file PATH, or --image PICTURE"
        )
    if beam is not None and sample:
        raise UserError("--beam and --sample choose different decoders; give one")
    if beam is not None and beam < 1:
        raise UserError(f"--beam must be at least 1, got {beam}")
    if batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {batch_size}")
    if file is not None:
        try:
            raw = sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise UserError(f"cannot read {file}: {e}") from None
        text = [line for line in raw.splitlines() if line.strip()]
        if not text:
            raise UserError(f"{file} holds no sources")
    s2s = sr.Seq2Seq(model, device=device)
    pictures = s2s.source_vocab is None
    if pictures != (image is not None):
        raise UserError(
            f"{model} reads "
            + (
                "pictures: give them with --image PICTURE"
                if pictures
                else "text: give it with --input or --file"
            )
        )
    method = "beam" if beam is not None else ("sample" if sample else "greedy")
    options = dict(
        method=method,
        beam_size=beam or 4,
        length_penalty=length_penalty,
        max_len=max_len,
        temperature=temperature,
        top_k=top_k,
        seed=seed,
    )
    if image is not None:
        from . import inputs

        name = s2s.info["source"]["name"]
        files = [f for path in image for f in inputs.image_files(path)]
        for start in range(0, len(files), batch_size):  # decoded a batch at a time
            part = files[start : start + batch_size]
            x = np.stack([inputs.read_image(f, s2s.encoder, name) for f in part])
            captions = s2s.caption(x, **options)
            for f, line in zip(part, captions, strict=True):
                print(f"{f}\t{line}" if len(files) > 1 else line)
        return
    for start in range(0, len(text), batch_size):
        for line in s2s.translate(text[start : start + batch_size], **options):
            print(line)


@app.command()
def encode(
    model: Annotated[
        Path,
        typer.Argument(
            metavar="DIR", help="A `specc train` folder of an autoencoder.", show_default=False
        ),
    ],
    input: Annotated[
        Path | None,
        typer.Option("--input", "-i", help="A .npy array of inputs (default: the run's data)."),
    ] = None,
    limit: Annotated[int, typer.Option(help="Print at most this many rows.")] = 50,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
):
    """Print each input's code (a VAE's latent mean) through encoder.onnx."""
    import numpy as np

    import specc.runtime as sr

    ae = sr.Autoencoder(model, device=device)
    try:
        if input is not None:
            x = np.load(input, allow_pickle=False)
        else:
            with np.load(model / "data.npz", allow_pickle=False) as f:
                x = f["x"]
    except (OSError, ValueError, KeyError, EOFError) as e:
        raise UserError(f"cannot read the inputs: {e}") from None
    codes = ae.encode(x)
    for i, row in enumerate(codes[:limit]):
        print(f"{i}\t" + " ".join(f"{v:.4f}" for v in np.ravel(row)))
    if len(codes) > limit:
        print(f"... {len(codes) - limit} more (--limit)")


@app.command()
def graph(
    spec: SpecArg,
    out: Annotated[Path, typer.Option("-o", "--out", help="A .svg, .png or .pdf file.")],
    overrides: SetOpt = None,
    unsets: UnsetOpt = None,
):
    """Draw the network: layers, shapes, parameter counts and every `from:` connection."""
    from .graph import draw

    path = draw(_compile(spec, overrides, unsets), out)
    print(f"wrote {path}")


@app.command()
def export(
    run: RunArg,
    quantize: Annotated[
        str | None,
        typer.Option(
            "--quantize",
            help="int8: static (QDQ) or dynamic int8, whichever measures faster -> model.int8.onnx (the default without --web).",
        ),
    ] = None,
    max_drop: Annotated[
        float, typer.Option(help="Refuse when validation accuracy drops more (points).", min=0)
    ] = 0.5,
    max_increase: Annotated[
        float, typer.Option(help="Regression: refuse when the error grows more (percent).", min=0)
    ] = 5.0,
    allow_drop: Annotated[
        bool,
        typer.Option("--allow-drop", help="Keep the model with a warning instead of refusing."),
    ] = False,
    allow_slower: Annotated[
        bool,
        typer.Option("--allow-slower", help="Keep an int8 model that measured slower than float."),
    ] = False,
    web: Annotated[
        Path | None,
        typer.Option(
            "--web",
            help="Write a static page that runs the model in the browser into this folder.",
        ),
    ] = None,
    onnxruntime_web: Annotated[
        Path | None,
        typer.Option(help="--web: onnxruntime-web's dist folder (default: an npm-installed one)."),
    ] = None,
):
    """Quantize a trained model (--quantize int8), checked against the float model on the
    validation split; or (--web OUT) write a page that runs it in the browser."""
    from specc.runtime import describe

    if web is None and quantize is None:  # nothing is done that was not asked for
        raise typer.BadParameter(
            "say what to export: --quantize int8 (model.int8.onnx) or --web OUT (a page)",
            param_hint="'--quantize' / '--web'",
        )
    if web is not None:
        from .web import export_web

        page = export_web(run, web, onnxruntime_web)
        print(f"wrote {page}; serve it with: python3 -m http.server -d {web} 8000")
        if quantize is None:
            return
    if quantize not in (None, "int8"):
        raise UserError(f"unknown --quantize '{quantize}': int8 is what specc can make")
    from .quantize import quantize as run_quantize
    from .run_folder import RunFolder

    run_quantize(run, max_drop, max_increase, allow_drop=allow_drop, allow_slower=allow_slower)
    written = describe.write(run)  # specc.json follows the graphs
    RunFolder(run).record(run / "model.int8.onnx", run / "quantization.json", *written)


@app.command()
def serve(
    models: Annotated[
        list[Path],
        typer.Argument(
            help="Folders written by `specc train` (or .onnx files).", show_default=False
        ),
    ],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.", min=0, max=65535)] = 8000,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    threads: Annotated[
        int | None, typer.Option(help="ONNX Runtime intra-op threads per model.", min=0)
    ] = None,
    batching: Annotated[bool, typer.Option(help="Gather concurrent requests into one run.")] = True,
    max_batch: Annotated[int, typer.Option(help="Most examples in one batched run.", min=1)] = 32,
    max_wait_ms: Annotated[
        float, typer.Option(help="Also wait this long for company when a batch is small.", min=0)
    ] = 0.0,
    max_request_mb: Annotated[
        float, typer.Option(help="Largest request body accepted.", min=0)
    ] = 16.0,
    name: Annotated[
        list[str] | None,
        typer.Option(
            "--name",
            help="Serve the models under these names, in order (repeatable; default: folder names).",
        ),
    ] = None,
    max_tokens: Annotated[
        int,
        typer.Option(help="Most tokens one :generate or :translate request may ask for.", min=1),
    ] = 1024,
    quiet: Annotated[bool, typer.Option("--quiet", help="No access log line per request.")] = False,
):
    """Serve models over HTTP: /v1/models/NAME:predict (JSON or .npy), :generate and :translate
    for language and seq2seq models, the Open Inference Protocol under /v2, /healthz, /metrics."""
    from specc.runtime.serve import require_server_packages
    from specc.runtime.serve import serve as run_server

    require_server_packages()
    run_server(
        models,
        host=host,
        port=port,
        device=device,
        threads=threads,
        names=name,
        quiet=quiet,
        batching=batching,
        max_batch=max_batch,
        max_wait_ms=max_wait_ms,
        max_request_bytes=int(max_request_mb * (1 << 20)),
        max_tokens=max_tokens,
    )


@app.command()
def schema():
    """Print the spec language's JSON Schema (for editor completion and validation)."""
    from .spec import json_schema

    doc = json_schema()
    doc["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    doc["title"] = "specc model spec (version 1)"
    print(json.dumps(doc, indent=2))


def main(argv: list[str] | None = None) -> int:
    """Entry point: maps every error to a message and an exit code (1 user error, 2 usage, 3
    internal; `specc train` passes on train.py's 4 for a diverged run and 130 for Ctrl-C)."""
    debug = os.environ.get("SPECC_DEBUG") == "1"
    try:
        app(
            args=argv if argv is not None else sys.argv[1:], prog_name="specc"
        )  # usage errors exit 2 here
        return 0
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        if debug:
            raise
        from specc.runtime.errors import SpeccRuntimeError

        if isinstance(e, SpecError):
            print(str(e), file=sys.stderr)
            return 1
        if isinstance(e, UserError | SpeccRuntimeError):
            print(f"error: {e}", file=sys.stderr)
            return 1
        print(
            f"internal error: {type(e).__name__}: {e}\n(rerun with SPECC_DEBUG=1 for the traceback, and please report it)",
            file=sys.stderr,
        )
        return 3


if __name__ == "__main__":
    sys.exit(main())
