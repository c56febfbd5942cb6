"""`specc export DIR --web OUT`: a static page that runs a trained model in the browser.

OUT holds index.html, app.js and style.css (specc.runtime's js/web), the JavaScript runtime
(js/src, as OUT/specc/), onnxruntime-web's WebAssembly build (OUT/ort/), and the run folder's
specc.json, tokenizer files and graphs (OUT/model/), with a few examples from its data
(OUT/model/examples.json). Nothing is fetched from elsewhere: serve OUT from any static server
(`python -m http.server -d OUT`) and open it; browsers do not run ES modules from file://.
No torch: numpy and the run folder only.
"""

from __future__ import annotations

import json
import os
import shutil
from importlib import resources
from pathlib import Path

import numpy as np

from specc.runtime import describe
from specc.runtime.text import Vocab

from .diagnostics import UserError
from .tasks import TASKS

ORT_WEB_VERSION = "1.30.0"  # the version runtime/js/package.json pins and the tests run
ORT_FILES = (
    "ort.wasm.bundle.min.mjs",  # the API
    "ort-wasm-simd-threaded.mjs",  # the WebAssembly module's loader, fetched from wasmPaths
    "ort-wasm-simd-threaded.wasm",
)
EXAMPLES = 12


def find_onnxruntime_web(given: Path | None = None) -> Path:
    """onnxruntime-web's dist folder: the one given (or $SPECC_ONNXRUNTIME_WEB), else an
    npm-installed one under the current folder or its parents, or in a specc checkout."""
    env = os.environ.get("SPECC_ONNXRUNTIME_WEB")
    candidates = []
    for start in (given, Path(env) if env else None):
        if start is not None:
            candidates += [start, start / "dist", start / "node_modules/onnxruntime-web/dist"]
    if given is None and not env:
        here = Path.cwd().resolve()
        for folder in (here, *here.parents):
            candidates += [
                folder / "node_modules/onnxruntime-web/dist",
                folder / "runtime/js/node_modules/onnxruntime-web/dist",  # a specc checkout
            ]
        package = Path(str(resources.files("specc.runtime")))
        candidates.append(package / "js/node_modules/onnxruntime-web/dist")
    for path in candidates:
        if all((path / f).is_file() for f in ORT_FILES):
            return path
    where = f" in {given}" if given else (f" in $SPECC_ONNXRUNTIME_WEB ({env})" if env else "")
    raise UserError(
        f"onnxruntime-web's files ({', '.join(ORT_FILES)}) not found{where}: run "
        f"`npm install onnxruntime-web@{ORT_WEB_VERSION}` in this folder (or `make js` in a specc "
        "checkout), or pass --onnxruntime-web PATH"
    )


def _examples(run: Path, desc: dict) -> dict:
    """A few examples from the run's held-out data, in the form the page's inputs take."""
    try:
        data = np.load(run / "data.npz", allow_pickle=False)
        splits = np.load(run / "splits.npz", allow_pickle=False)
    except (OSError, ValueError):
        return {}
    rows = next(
        (splits[k] for k in ("test", "val", "train") if k in splits.files and len(splits[k])), []
    )
    rows = np.asarray(rows)[:EXAMPLES]
    if not len(rows):
        return {}
    x = data["x"][rows]
    labels = [str(v) for v in data["labels"]] if "labels" in data.files else None
    task, first = TASKS[desc["task"]], desc["inputs"][0]
    tokenizers = desc.get("tokenizers", {})

    def vocab(key):  # a tokenizer by name; None where the folder has none of that name
        t = tokenizers.get(key)
        return None if t is None else Vocab(tuple(t["tokens"]), t["level"], t["lowercase"])

    own = task.web_examples(x, data, rows, vocab)
    if own is not None:
        return own
    if first["role"] == "tokens":
        v = vocab(first["tokenizer"])
        lengths = data["x1"][rows] if "x1" in data.files else [len(r) for r in x]
        texts = [v.decode(r[:n]) for r, n in zip(x, lengths, strict=True)]
        targets = [labels[int(c)] if labels else str(c) for c in data["y"][rows]]
        return {"texts": texts, "targets": targets}
    out = {"rows": x.reshape(len(x), -1).astype(np.float32).tolist()}
    if task.targets == "classes":
        out["targets"] = [labels[int(c)] if labels else str(int(c)) for c in data["y"][rows]]
    return out


def export_web(run: Path, out: Path, onnxruntime_web: Path | None = None) -> Path:
    """Write the page for the run folder `run` into `out`; returns out/index.html."""
    run, out = Path(run), Path(out)
    if not (run / "model.onnx").is_file():
        raise UserError(f"{run} holds no model.onnx: export --web takes a folder of specc train")
    describe.write(run)  # refresh specc.json from the graphs (older runs have none)
    problems = describe.check(run)
    if problems:  # cannot happen after write, unless the folder changes under us
        raise UserError(f"{run}: {'; '.join(problems)}")
    ort_dist = find_onnxruntime_web(onnxruntime_web)
    desc = json.loads((run / describe.DESCRIPTION).read_text(encoding="utf-8"))
    js = resources.files("specc.runtime") / "js"
    out.mkdir(parents=True, exist_ok=True)
    for sub in ("specc", "ort", "model"):
        if (out / sub).is_dir():
            shutil.rmtree(out / sub)
        (out / sub).mkdir()
    for name in ("index.html", "app.js", "style.css"):
        (out / name).write_bytes((js / "web" / name).read_bytes())
    for item in (js / "src").iterdir():
        if item.name.endswith(".js"):
            (out / "specc" / item.name).write_bytes(item.read_bytes())
    for name in ORT_FILES:
        shutil.copyfile(ort_dist / name, out / "ort" / name)
    licence = ort_dist.parent / "LICENSE"
    if licence.is_file():
        shutil.copyfile(licence, out / "ort" / "LICENSE")
    files = [describe.DESCRIPTION, *(t["file"] for t in desc.get("tokenizers", {}).values())]
    files += [g["file"] for g in desc["graphs"].values()]
    for name in dict.fromkeys(files):
        shutil.copyfile(run / name, out / "model" / name)
    examples = _examples(run, desc)
    (out / "model" / "examples.json").write_text(json.dumps(examples), encoding="utf-8")
    return out / "index.html"
