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

from .diagnostics import SpecError, UserError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="specc: declarative model specs -> checked shapes -> readable PyTorch -> ONNX -> ONNX Runtime.",
)

SpecArg = Annotated[
    Path, typer.Argument(help="A .yaml/.yml or .toml spec file.", show_default=False)
]


SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="KEY=VALUE",
        help="Override one spec value by dotted path, e.g. --set train.optimizer.lr=0.01 (repeatable).",
    ),
]


def _compile(spec: Path, overrides: list[str] | None = None):
    from .pipeline import compile_file

    return compile_file(spec, overrides or ())


@app.command()
def check(
    spec: SpecArg,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    overrides: SetOpt = None,
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
        compiled = _compile(spec, overrides)
    except SpecError as e:
        if as_json:  # the diagnostics on stdout for tools; the same lines on stderr for people
            doc = {"ok": False, "diagnostics": [d.as_json() for d in e.diagnostics]}
            print(json.dumps(doc, indent=2))
        raise
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
        if not name or not value.isdigit() or int(value) < 1:
            raise UserError(f"--dim {text}: expected NAME=SIZE with a positive size, e.g. time=64")
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
):
    """Generate model.py, train.py and spec.json (deterministic, formatted, standalone)."""
    from . import driver

    compiled = _compile(spec, overrides)
    driver.build(compiled, out or driver.default_out(compiled, "build"), verify=verify)


@app.command()
def train(
    spec: SpecArg,
    out: Annotated[
        Path | None, typer.Option("-o", "--out", help="Output folder (default: runs/<name>/).")
    ] = None,
    overrides: SetOpt = None,
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
):
    """Build, train with the generated train.py, export model.onnx and verify it against PyTorch."""
    from . import driver

    compiled = _compile(spec, overrides)
    report = driver.train(
        compiled,
        out or driver.default_out(compiled, "runs"),
        quiet=quiet,
        resume=resume,
        overwrite=overwrite,
        nproc=nproc,
    )
    shown = ", ".join(
        f"{k} {v:.4f}" for k, v in report["metrics"].items() if k.startswith(("val_", "test_"))
    )
    print(
        f"done in {report['wall_seconds']:.1f}s: best epoch {report['best_epoch']} of {report['epochs_run']}: {shown}"
    )


@app.command()
def evaluate(
    run: Annotated[
        Path, typer.Argument(help="A folder written by `specc train`.", show_default=False)
    ],
    data: Annotated[
        str | None,
        typer.Option(
            "--data",
            help="A .npz (x, y), a .csv laid out like the spec's, an image folder, or a split of the run: train, val, test (default: test if the run has one, else val).",
        ),
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
):
    """Score a trained model through ONNX Runtime: loss, metrics, and a confusion matrix for classifiers."""
    from . import evaluate as ev

    result = ev.evaluate(run, data, device=device)
    print(json.dumps(result, indent=2) if as_json else ev.format_result(result))


@app.command()
def predict(
    model: Annotated[
        Path,
        typer.Argument(
            help="A model.onnx, or a folder written by `specc train`.", show_default=False
        ),
    ],
    input: Annotated[
        Path,
        typer.Option("--input", "-i", help="A .npy array of inputs (with the batch dimension)."),
    ],
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
):
    """Run a model through ONNX Runtime on a .npy file and print the predictions."""
    import numpy as np

    import specc.runtime as sr

    try:
        x = np.load(input, allow_pickle=False)
    except FileNotFoundError:
        raise UserError(f"no such file: {input}") from None
    except ValueError as e:
        raise UserError(f"{input} is not a .npy array: {e}") from None
    m = sr.load(model, device=device)
    result = m.predict(x)
    if isinstance(result, sr.Predictions):  # the task answers with labels
        if as_json:
            print(json.dumps([{"index": i, **row} for i, row in enumerate(result.rows())]))
        else:
            print("\n".join(result.lines()))
    else:
        values = np.asarray(result)
        print(
            json.dumps(values.tolist())
            if as_json
            else "\n".join(" ".join(f"{v:.6g}" for v in np.ravel(row)) for row in values)
        )


@app.command()
def sample(
    model: Annotated[
        Path,
        typer.Argument(
            help="A `specc train` folder of a language model (step.onnx), a VAE or a GAN.",
            show_default=False,
        ),
    ],
    prompt: Annotated[str, typer.Option("--prompt", "-p", help="Text to continue.")] = "",
    n: Annotated[int, typer.Option("-n", help="Tokens to generate, or images to draw.")] = 200,
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
        Path, typer.Option("--output", "-o", help="Image grid to write (VAE).")
    ] = Path("samples.png"),
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
):
    """Generate through ONNX Runtime: text from a language model, an image grid from a VAE or a GAN."""
    import specc.runtime as sr

    if model.is_dir() and (model / "generator.onnx").is_file():
        sr.save_grid(sr.Generator(model, device=device).sample(n, seed), output)
        print(f"wrote {output}: {n} samples of the generator {model / 'generator.onnx'}")
        return
    if model.is_dir() and (model / "encoder.onnx").is_file() and (model / "step.onnx").is_file():
        raise UserError(
            f"{model} holds a seq2seq model: it writes a target for a source; use "
            f"specc translate {model} --input TEXT (add --sample to draw instead of the likeliest)"
        )
    if model.is_dir() and (model / "decoder.onnx").is_file():
        ae = sr.Autoencoder(model, device=device)
        sr.save_grid(ae.sample(n, seed), output)
        print(f"wrote {output}: {n} samples from N(0, I) through {model / 'decoder.onnx'}")
        return
    if model.is_dir() and not (model / "step.onnx").is_file() and (model / "model.onnx").is_file():
        task = sr.load(model, device="cpu").task
        raise UserError(
            f"{model} holds a {task} model, which has nothing to sample; sampling needs a "
            "language model (task: language_model), a VAE (task: autoencoder with latent:) or a GAN"
        )
    lm = sr.LanguageModel(model, device=device)
    print(lm.generate(prompt, n, temperature, top_k, top_p, seed))


@app.command()
def translate(
    model: Annotated[
        Path,
        typer.Argument(help="A `specc train` folder of a seq2seq model.", show_default=False),
    ],
    text: Annotated[
        list[str] | None, typer.Option("--input", "-i", help="A source text (repeatable).")
    ] = None,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="Sources, one per line ('-': stdin).")
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
    temperature: Annotated[float, typer.Option("--temperature", "-t")] = 1.0,
    top_k: Annotated[int | None, typer.Option("--top-k")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for repeatable samples.")] = None,
    max_len: Annotated[
        int | None, typer.Option(help="Most tokens to write (default: from the training data).")
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Sources decoded together.")] = 64,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
):
    """Decode sources with a seq2seq model through ONNX Runtime: one output line per input."""
    import specc.runtime as sr

    if (text is None) == (file is None):
        raise UserError("give the sources with --input TEXT (repeatable) or --file PATH")
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
    for start in range(0, len(text), batch_size):
        for line in s2s.translate(text[start : start + batch_size], **options):
            print(line)


@app.command()
def encode(
    model: Annotated[
        Path, typer.Argument(help="A `specc train` folder of an autoencoder.", show_default=False)
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
    except (OSError, ValueError, KeyError) as e:
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
):
    """Draw the network: layers, shapes, parameter counts and every `from:` connection."""
    from .graph import draw

    path = draw(_compile(spec, overrides), out)
    print(f"wrote {path}")


@app.command()
def export(
    run: Annotated[
        Path, typer.Argument(help="A folder written by `specc train`.", show_default=False)
    ],
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
    """Quantize a trained model (int8), checked against the float model on the validation split;
    or (--web OUT) write a page that runs it in the browser."""
    from specc.runtime import describe

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
        int | None, typer.Option(help="ONNX Runtime intra-op threads per model.")
    ] = None,
    batching: Annotated[bool, typer.Option(help="Gather concurrent requests into one run.")] = True,
    max_batch: Annotated[int, typer.Option(help="Most examples in one batched run.", min=1)] = 32,
    max_wait_ms: Annotated[
        float, typer.Option(help="Also wait this long for company when a batch is small.", min=0)
    ] = 0.0,
    max_request_mb: Annotated[
        float, typer.Option(help="Largest request body accepted.", min=0)
    ] = 16.0,
):
    """Serve models over HTTP: /v1/models/NAME:predict (JSON or .npy), /healthz, /metrics."""
    try:
        from specc.runtime.serve import serve as run_server
    except ImportError:
        raise UserError("specc serve needs its extra: pip install 'specc[serve]'") from None
    run_server(
        models,
        host=host,
        port=port,
        device=device,
        threads=threads,
        batching=batching,
        max_batch=max_batch,
        max_wait_ms=max_wait_ms,
        max_request_bytes=int(max_request_mb * (1 << 20)),
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
    """Entry point: maps every error to a message and an exit code (1 user error, 2 usage, 3 internal)."""
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
