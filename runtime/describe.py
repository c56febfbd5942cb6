"""A run folder described for any ONNX Runtime client: specc.json and tokenizer.json.

ONNX Runtime's JavaScript API does not expose a model's metadata_props, and no client should have
to read specc's Python to know how to tokenize a prompt or drive a step graph. `write(folder)`
reads the specc metadata of the folder's graphs (model.onnx, step.onnx, encoder.onnx,
decoder.onnx, generator.onnx) and writes, next to them:

- specc.json: the inputs (names, dtypes, dims, what each holds, how raw values become them), the
  output (kind, labels, how to get probabilities), the task's protocol (step-graph states and
  their outputs, special ids, <bos>/<eos> rules, encoder memories to step inputs, latent size
  and prior), the tokenizers' rules and tokens, and each graph's metadata verbatim;
- tokenizer.json (a seq2seq model: tokenizer.json for the source, target_tokenizer.json for the
  target): Hugging Face `tokenizers` files that give exactly specc's token ids.

The ONNX metadata stays the source of truth: everything written is a function of the graphs
alone (`describe(folder)`), and `check(folder)` lists where the files on disk disagree with the
graphs (a stale or edited specc.json). Imports numpy and onnxruntime only, like all of
specc.runtime.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import unicodedata
from pathlib import Path

from .contracts import SPECIAL_TOKENS, UNK, Meta
from .errors import ModelLoadError
from .session import _DTYPES, _check_specc_metadata, _import_ort
from .text import Vocab

DESCRIPTION = "specc.json"
FORMAT = 1  # bump when a client of an older specc.json could no longer read it
GRAPHS = ("model", "step", "encoder", "decoder", "generator")
SPECIAL_IDS = {
    name.strip("<>"): i for i, name in enumerate(SPECIAL_TOKENS)
}  # pad 0 unk 1 bos 2 eos 3

# How each output kind of a classifier turns into class probabilities (runtime/session.py).
PROBABILITIES = {
    "logits": "softmax over the last axis",
    "log_probabilities": "exp",
    "probabilities": "as they are",
    "binary_logit": "p = sigmoid(the one value); probabilities [1 - p, p]",
    "binary_probability": "p = the one value; probabilities [1 - p, p]",
}
# What a float input holds, by where its data came from (specc.preprocess's source).
ROLES = (
    {"digits": "image", "images": "image"}
    | {name: "features" for name in ("csv", "parquet", "datasets")}
    | {name: "features" for name in ("iris", "wine", "breast_cancer")}
)
WORD_PATTERN = r"\w+|[^\w\s]"  # runtime/text.py's WORD
GLUE = "([{\"'"  # runtime/text.py's detokenize: these open a group and take a space before them


# ---------------------------------------------------------------------------------- reading


def _graph(path: Path) -> dict:
    """A graph's signature and specc metadata, read through ONNX Runtime (no protobuf code)."""
    ort = _import_ort()
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own types for unreadable files
        raise ModelLoadError(f"cannot load {path}: {str(e).strip()[:300]}") from e
    meta = dict(session.get_modelmeta().custom_metadata_map)
    _check_specc_metadata(path, meta)

    def signature(node):
        dtype = _DTYPES.get(node.type)
        return {
            "name": node.name,
            "dtype": dtype.__name__ if dtype is not None else node.type,
            "dims": [d if isinstance(d, int) else (d or "?") for d in node.shape],
        }

    return {
        "file": path.name,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "inputs": [signature(i) for i in session.get_inputs()],
        "outputs": [signature(o) for o in session.get_outputs()],
        "metadata": dict(sorted(meta.items())),
    }


def graphs(folder: str | Path) -> dict:
    """{graph name: signature, sha256 and metadata} for the graphs the folder holds."""
    folder = Path(folder)
    found = {g: _graph(folder / f"{g}.onnx") for g in GRAPHS if (folder / f"{g}.onnx").is_file()}
    if "model" not in found:
        raise ModelLoadError(f"no model.onnx in {folder}: describe a folder written by specc train")
    return found


def _json(meta: dict, key: str, default=None):
    return json.loads(meta[key]) if key in meta else default


# ---------------------------------------------------------------------------------- tokens


@functools.lru_cache(maxsize=1)
def unicode_classes() -> dict:
    """Python's `\\w` and `\\s` for str patterns, as code point ranges [first, last].

    Other regex engines disagree with Python's: JavaScript's `\\w` is ASCII-only, and
    Oniguruma's (Hugging Face tokenizers) includes combining marks, which Python's leaves out
    (Python splits a decomposed "café" into "cafe" and the accent). Ranges copied from Python's
    own `re` make every client split alike, whatever Unicode version its engine knows.
    """
    text = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)

    def ranges(pattern: str) -> list[list[int]]:
        out: list[list[int]] = []
        for m in re.finditer(pattern, text):
            first, last = ord(m.group()[0]), ord(m.group()[-1])
            if out and (out[-1][1] + 1 == first or (out[-1][1] == 0xD7FF and first == 0xE000)):
                out[-1][1] = last  # a run that continues across the surrogates left out above
            else:
                out.append([first, last])
        return out

    return {"word": ranges(r"\w+"), "space": ranges(r"\s+"), "unicode": unicodedata.unidata_version}


def _onig_class(ranges) -> str:
    return "".join(f"\\x{{{a:X}}}" if a == b else f"\\x{{{a:X}}}-\\x{{{b:X}}}" for a, b in ranges)


# Python's str.lower() turns a word-final capital sigma into final sigma (Unicode's Final_Sigma);
# Hugging Face's Lowercase does not, so the tokenizer replaces it first. Lookbehind in Oniguruma
# takes fixed lengths: up to three case-ignorable characters (apostrophes, accents) between.
FINAL_SIGMA = (
    r"(?<=\p{Cased}|\p{Cased}\p{Case_Ignorable}|\p{Cased}\p{Case_Ignorable}{2}"
    r"|\p{Cased}\p{Case_Ignorable}{3})\x{3A3}(?!\p{Case_Ignorable}*\p{Cased})"
)


def tokenizer_json(vocab: Vocab) -> dict:
    """A Hugging Face `tokenizers` file that gives exactly `vocab.encode`'s ids.

    The specials are entries of the vocabulary but not added tokens: specc never reads "<pad>"
    in a text as one token (it splits it), and neither may this file. Words are the pieces of
    `\\w+|[^\\w\\s]` with Python's classes written out; characters are code points. A token not
    in the vocabulary is <unk> (id 1), as `Vocab.encode` has it. Decoding: characters fuse; word
    tokens come back joined by spaces (specc.json's tokenizer `join` gives specc's exact rule).
    """
    normalizer = None
    if vocab.lowercase:
        normalizer = {
            "type": "Sequence",
            "normalizers": [
                {"type": "Replace", "pattern": {"Regex": FINAL_SIGMA}, "content": "\u03c2"},
                {"type": "Lowercase"},
            ],
        }
    if vocab.level == "char":
        pattern = r"[\x{0}-\x{10FFFF}]"  # one code point per token, newlines included
    else:
        classes = unicode_classes()
        word = _onig_class(classes["word"])
        pattern = f"[{word}]+|[^{word}{_onig_class(classes['space'])}]"
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [],
        "normalizer": normalizer,
        # invert + Removed: each match of the pattern is a piece, everything between is dropped
        "pre_tokenizer": {
            "type": "Split",
            "pattern": {"Regex": pattern},
            "behavior": "Removed",
            "invert": True,
        },
        "post_processor": None,
        "decoder": {"type": "Fuse"} if vocab.level == "char" else None,
        "model": {
            "type": "WordLevel",
            "vocab": {t: i for i, t in enumerate(vocab.tokens)},
            "unk_token": SPECIAL_TOKENS[UNK],
        },
    }


def _tokenizer(vocab: Vocab, file: str, unknown: str) -> dict:
    """specc.json's account of one vocabulary: every rule a client needs, and the tokens."""
    out = {
        "file": file,
        "level": vocab.level,
        "lowercase": vocab.lowercase,
        "special": dict(SPECIAL_IDS),
        "unknown": unknown,
    }
    if vocab.level == "char":
        out["split"] = {"kind": "code_points", "rule": "every Unicode code point is a token"}
        out["join"] = {"kind": "concat", "rule": "tokens are concatenated"}
    else:
        classes = unicode_classes()
        out["split"] = {
            "kind": "regex",
            "pattern": WORD_PATTERN,
            "rule": "the matches of the pattern in order, with Python's str semantics: \\w is a "
            "code point in `word`, \\s one in `space` (inclusive ranges)",
            "word": classes["word"],
            "space": classes["space"],
            "unicode": classes["unicode"],
        }
        out["join"] = {
            "kind": "words",
            "rule": "the first token as it is; each next token takes a space before it, unless "
            "its first character is neither alphanumeric (a `word` code point other than '_') "
            f"nor one of {GLUE}: such a token (punctuation) sticks to the text before it",
            "glue_exceptions": GLUE,
        }
    if vocab.lowercase:
        out["lowercase_rule"] = (
            "Python's str.lower(): full Unicode lowercase mapping with Final_Sigma "
            "(JavaScript's String.prototype.toLowerCase does the same)"
        )
    out["decode"] = "drop ids below 4 (the specials), then join the tokens"
    out["tokens"] = list(vocab.tokens)
    return out


# ---------------------------------------------------------------------------------- describing


def _input_entry(sig: dict, meta_dims: dict, role: str, **more) -> dict:
    entry = {
        "name": sig["name"],
        "dtype": sig["dtype"],
        "dims": meta_dims.get(sig["name"], sig["dims"]),
        "role": role,
    }
    entry.update(more)
    return entry


def _declared_dims(meta: dict) -> dict:
    """The dims specc declared (named dynamic dims), by input name."""
    return {i["name"]: i["dims"] for i in _json(meta, Meta.INPUTS, [])}


def describe(folder: str | Path) -> tuple[dict, dict]:
    """(specc.json's content, {file name: tokenizer.json content}), from the graphs alone."""
    folder = Path(folder)
    found = graphs(folder)
    model = found["model"]
    meta = model["metadata"]
    task = meta.get(Meta.TASK)
    preprocess = _json(meta, Meta.PREPROCESS)
    tokenizers: dict = {}
    files: dict = {}
    desc = {
        "specc_json": FORMAT,
        "about": "How to use this folder's ONNX graphs from any language: written by specc from "
        "the graphs' metadata (the source of truth); see specc's docs/serving.md",
        "specc_version": meta.get(Meta.VERSION),
        "name": meta.get(Meta.SPEC_NAME),
        "task": task,
        "spec_sha256": meta.get(Meta.SPEC_SHA256),
    }

    def add_tokenizer(key: str, vocab: Vocab, file: str, unknown: str) -> str:
        tokenizers[key] = _tokenizer(vocab, file, unknown)
        files[file] = tokenizer_json(vocab)
        return key

    # The main graph's inputs, each with what it holds and how a raw value becomes it.
    declared = _declared_dims(meta)
    vocab = Vocab.from_json(meta[Meta.VOCAB]) if Meta.VOCAB in meta else None
    if vocab is None and "step" in found and Meta.VOCAB in found["step"]["metadata"]:
        vocab = Vocab.from_json(found["step"]["metadata"][Meta.VOCAB])
    inputs = []
    if task == "seq2seq":
        info = json.loads(found["step"]["metadata"][Meta.SEQ2SEQ])
    for sig in model["inputs"]:
        name = sig["name"]
        if vocab is not None and sig["dtype"] == "int64" and len(sig["dims"]) == 2:
            unknown = "error" if task == "language_model" else "unk"
            key = add_tokenizer("text", vocab, "tokenizer.json", unknown)
            entry = _input_entry(
                sig, declared, "tokens", tokenizer=key, padding={"id": 0, "side": "right"}
            )
        elif sig["dtype"] == "int64" and len(sig["dims"]) == 1:
            tokens = next((i["name"] for i in inputs if i["role"] == "tokens"), None)
            entry = _input_entry(sig, declared, "lengths", of=tokens)
        elif task == "seq2seq" and name == info["target"]:
            entry = _input_entry(sig, declared, "target_tokens", tokenizer="target")
        elif task == "seq2seq" and name == info["source"]["name"] and info["source_vocab"]:
            entry = _input_entry(
                sig, declared, "tokens", tokenizer="source", padding={"id": 0, "side": "right"}
            )
        elif task == "gan":
            entry = _input_entry(sig, declared, "noise", distribution="standard_normal")
        else:
            source = ((preprocess or {}).get(name) or {}).get("source")
            role = "tokens" if sig["dtype"] == "int64" else ROLES.get(source, "values")
            entry = _input_entry(sig, declared, role)
        if preprocess is not None and name in preprocess:
            entry["preprocess"] = preprocess[name]
        inputs.append(entry)
    desc["inputs"] = inputs
    out = model["outputs"][0]
    kind = meta.get(Meta.OUTPUT_KIND)
    desc["output"] = {
        "name": out["name"],
        "dims": (_json(meta, Meta.OUTPUTS) or [{"dims": out["dims"]}])[0]["dims"],
        "kind": kind,
        "labels": _json(meta, Meta.LABELS) if task in ("classification", "multilabel") else None,
        "num_classes": int(meta[Meta.NUM_CLASSES]) if Meta.NUM_CLASSES in meta else None,
    }
    if task == "classification":
        desc["output"]["probabilities"] = PROBABILITIES.get(kind)
        desc["classify"] = {
            "graph": "model",
            "rule": "run model.onnx; probabilities from the output by output.probabilities; the "
            "class is the likeliest, its label output.labels[class] (the index as text without "
            "labels). Text inputs: token ids (unknown tokens -> <unk>, id 1), right-padded with "
            "<pad> (0) to the batch's longest, and each text's token count as its length",
        }
    elif task == "multilabel":
        desc["labels"] = {
            "graph": "model",
            "rule": "run model.onnx; each label's probability is the output itself "
            "(multilabel_probabilities) or its sigmoid (multilabel_logits); a label holds when its "
            "probability reaches the threshold (0.5 by default); names in output.labels",
        }
    elif task == "regression":
        desc["regress"] = {"graph": "model", "rule": "run model.onnx; the output is the answer"}
    elif task == "language_model":
        desc["generate"] = _generate(found["step"])
    elif task == "seq2seq":
        desc["translate"] = _translate(found, info, add_tokenizer)
    elif task == "autoencoder":
        desc["autoencoder"] = _autoencoder(found, preprocess)
    elif task == "gan":
        gen = found.get("generator", model)
        desc["gan"] = {
            "generator": {
                "graph": "generator" if "generator" in found else "model",
                "input": gen["inputs"][0]["name"],
                "output": gen["outputs"][0]["name"],
            },
            "latent": {"dim": gen["inputs"][0]["dims"][1], "prior": "standard_normal"},
            "outputs_like": _data_input(preprocess),
            "rule": "draw z ~ N(0, I) of shape (n, dim) as float32 and run the generator",
        }
    if tokenizers:
        desc["tokenizers"] = tokenizers
    desc["graphs"] = found
    return desc, files


def _data_input(preprocess) -> dict | None:
    """For generated images: the data input they imitate (and how its values were made)."""
    if not preprocess:
        return None
    name, how = next(iter(preprocess.items()))
    return {"input": name, "preprocess": how}


def _generate(step: dict) -> dict:
    meta = step["metadata"]
    states = _json(meta, Meta.STATES, [])
    initial = _json(meta, Meta.INITIAL_STATE, {})
    tokens = step["inputs"][0]["name"]
    return {
        "graph": "step",
        "tokens": tokens,
        "logits": step["outputs"][0]["name"],
        "states": [
            {
                "name": s["name"],
                "output": s["output"],
                "dims": s["dims"],
                "batch_axis": s["dims"].index("batch"),
                # learned starting values for batch 1 (repeat them along batch_axis), or zeros
                "initial": initial.get(s["name"], "zeros"),
            }
            for s in states
        ],
        "tokenizer": "text",
        "special": dict(SPECIAL_IDS),
        "rule": "run the prompt's ids, after <bos> (2), through the step graph once as "
        "(1, 1 + prompt length) with the initial states; then repeatedly pick a token from the "
        "last position's logits and feed it alone as (1, 1) with the states the previous call "
        "returned (each state's `output`), until <eos> (3) or the token budget. A prompt token "
        "not in the vocabulary is an error. The text is the prompt's tokens and the new ones, "
        "joined by the tokenizer's rule",
        "pick": {
            "never": [0, 1, 2],
            "greedy": "temperature 0: the likeliest token, ids `never` excluded",
            "sample": "logits / temperature; top_k keeps the k largest; softmax; top_p keeps the "
            "smallest set of likeliest tokens holding probability top_p (a token is dropped when "
            "the tokens ranked above it already hold top_p); renormalize and draw",
        },
    }


def _translate(found: dict, info: dict, add_tokenizer) -> dict:
    encoder = found["encoder"]
    memories = [m["name"] for m in info["memories"]]
    source = dict(info["source"])
    if info["source_vocab"]:
        source["tokenizer"] = add_tokenizer(
            "source", Vocab.from_json(info["source_vocab"]), "tokenizer.json", "error"
        )
    target = add_tokenizer(
        "target", Vocab.from_json(info["target_vocab"]), "target_tokenizer.json", "error"
    )
    enc_outputs = [o["name"] for o in encoder["outputs"]]
    return {
        "encoder": {
            "graph": "encoder",
            "source": source,
            "lengths": info["lengths"],
            "outputs": enc_outputs,
        },
        "step": {
            "graph": "step",
            "tokens": info["target"],
            "logits": info["logits"],
            # each memory is an encoder output of the same name, fed unchanged at every step
            "memories": [{"name": m, "from_encoder_output": m} for m in memories],
            # the step's other inputs are the encoder's inputs of the same name (source lengths)
            "from_encoder_inputs": list(info["step_inputs"]),
            "states": [
                {
                    "name": s["name"],
                    "output": s["output"],
                    "dims": s["dims"],
                    "batch_axis": s["batch_axis"],
                    "initial": {"from_encoder_output": s["name"]},
                }
                for s in info["states"]
            ],
        },
        "target": {"tokenizer": target},
        "special": dict(info["special"]),
        "max_len": info["max_len"],
        "max_source_len": info["max_source_len"],
        "rule": "encode the sources (ids right-padded with <pad> 0, lengths) once; start every "
        "target with <bos> (2), fed as (batch, 1) with the memories, the lengths and the "
        "encoder's states; each call returns logits (batch, 1, vocabulary) and the next states; "
        "a sequence ends at <eos> (3) or after max_len tokens. A source token not in the "
        "vocabulary is an error",
        "greedy": {"never": [0, 2], "rule": "the likeliest token each step"},
        "beam": {
            "never": [0, 2],
            "rule": "log-softmax in float64; each step keeps, per source, the beam_size best "
            "live continuations among the 2 * beam_size best (score = summed log-probabilities); "
            "a continuation ending in <eos> ranked among them becomes a candidate with score / "
            "((5 + length) / 6) ** length_penalty, length counting the <eos>; stop when every "
            "source has beam_size candidates; the answer is the best candidate (or, when none "
            "ended, the best live sequence, normalized by its length); ties keep the lower "
            "(beam, token) index",
        },
        "sample": {"never": [0, 1, 2], "rule": "as a language model's pick at a temperature"},
    }


def _autoencoder(found: dict, preprocess) -> dict:
    enc, dec = found["encoder"], found["decoder"]
    latent = _json(dec["metadata"], Meta.LATENT, {})
    gaussian = latent.get("type") == "gaussian"
    return {
        "encoder": {
            "graph": "encoder",
            "input": enc["inputs"][0]["name"],
            "outputs": [o["name"] for o in enc["outputs"]],
        },
        "decoder": {
            "graph": "decoder",
            "input": dec["inputs"][0]["name"],
            "output": dec["outputs"][0]["name"],
        },
        "latent": {
            "dim": latent.get("dim", dec["inputs"][0]["dims"][1]),
            "type": latent.get("type", "code"),
            "prior": "standard_normal" if gaussian else None,
        },
        "outputs_like": _data_input(preprocess),
        "rule": "encode: the encoder's first output is the code (a VAE's latent mean; its second "
        "the log-variance); decode: codes (n, dim) float32 through the decoder; sample (VAE "
        "only): z ~ N(0, I), decoded",
    }


# ---------------------------------------------------------------------------------- files


def _dump(data) -> str:
    """JSON, one key per line, but lists of plain values (ranges, dims, tokens) on one line."""

    def form(value, depth: int) -> str:
        pad, inner = " " * depth, " " * (depth + 1)
        if isinstance(value, dict) and value:
            items = [f"{inner}{json.dumps(k)}: {form(v, depth + 1)}" for k, v in value.items()]
            return "{\n" + ",\n".join(items) + "\n" + pad + "}"
        if isinstance(value, list) and any(isinstance(v, dict) for v in value):
            return "[\n" + ",\n".join(inner + form(v, depth + 1) for v in value) + "\n" + pad + "]"
        return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))

    return form(data, 0) + "\n"


def write(folder: str | Path) -> list[Path]:
    """Write specc.json and the tokenizer files next to the graphs; returns their paths."""
    folder = Path(folder)
    desc, files = describe(folder)
    written = []
    for name, content in [(DESCRIPTION, desc), *files.items()]:
        path = folder / name
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(_dump(content), encoding="utf-8")
        tmp.replace(path)
        written.append(path)
    return written


def check(folder: str | Path) -> list[str]:
    """Where the folder's specc.json and tokenizer files disagree with its graphs ([] if nowhere)."""
    folder = Path(folder)
    desc, files = describe(folder)
    problems = []
    for name, want in [(DESCRIPTION, desc), *files.items()]:
        path = folder / name
        try:
            have = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            problems.append(f"{name} is missing or not JSON")
            continue
        if have != want:
            keys = sorted({*have, *want} - {k for k in want if have.get(k) == want[k]})
            problems.append(f"{name} disagrees with the graphs at {', '.join(keys)}")
    return problems
