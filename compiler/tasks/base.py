"""What a task is: everything specc does differently for classification, a language model, a GAN...

A task is one module in this package holding one `Task` subclass. The generic stages call it at
fixed points and never branch on its name:

| stage      | asks the task                                                                 |
|------------|-------------------------------------------------------------------------------|
| parse      | `reads` (its top-level keys), `layout` (its layer sections, inputs it adds)   |
| checks     | `check` (its rules on the expanded layers), `takes_state_sources`             |
| resolve    | `bind` (values its layers take from other layers), `check_data`               |
| plan       | `plan_rules`, `output`, `losses`/`default_loss`, `default_metrics`/`metrics`, `train_keys` |
| ir         | `named_outputs`, `build` (its IR pieces: extra model methods, states)         |
| codegen    | its template partials: `templates/tasks/<name>.model.jinja` and `.train.jinja` |
| export     | `export` (the graphs besides model.onnx, and their parity)                    |
| evaluate   | `read_examples` (new data in its own formats), `evaluate`/`score` (ONNX Runtime) |
| runtime    | `runtime_class` (what serves it from `specc.runtime`)                         |

The defaults below describe the common case: one `model:` section read from the spec's single
data input, trained on targets. A task overrides what it does differently.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from specc.runtime.contracts import IGNORE_INDEX

from ..diagnostics import Diagnostic
from ..expand import Section

if TYPE_CHECKING:
    from ..ir import Builder, TaskIR
    from ..load import Source
    from ..shapes import Inferred
    from ..spec import Parsed


@dataclass(frozen=True)
class Layout:
    """How a task's sections become one chain of layers, and the inputs specc adds for it."""

    chain: tuple  # Section and Synthetic links, in order
    added_inputs: dict = field(default_factory=dict)  # name -> raw {shape, dtype}


@dataclass(frozen=True)
class ExportJob:
    """What a task's export needs (Task.export): the trained model in eval mode, the compiled
    spec, its data, the run folder, and where progress lines go."""

    model: object  # torch.nn.Module
    compiled: object  # pipeline.Compiled
    data: object  # data.Dataset
    folder: Path
    log: Callable[[str], None]


@dataclass(frozen=True)
class Output:
    """What the model's output is, decided from its last layer and shape."""

    kind: str  # logits | probabilities | log_probabilities | binary_logit | binary_probability | values
    num_classes: int | None
    shape: tuple  # without the batch


class Task:
    """The defaults: one `model:` section, trained on targets. Subclasses set `name`."""

    name: ClassVar[str]
    summary: ClassVar[str]  # one line: how it trains and what serves it
    reads: ClassVar[tuple[str, ...]] = ("model",)  # top-level keys only some tasks read
    sections: ClassVar[tuple[str, ...]] = ("model",)  # of those, the layer lists, in chain order
    takes_state_sources: ClassVar[bool] = False  # initial_state: {from: LAYER} allowed
    # train: keys only some tasks read, with why they need this task: {"tbptt": "carries ..."}
    train_keys: ClassVar[dict[str, str]] = {}
    data_types: ClassVar[tuple[str, ...]] = (
        "builtin",
        "npz",
        "csv",
        "parquet",
        "datasets",
        "images",
        "text",
    )
    # What the data's targets are: "classes" (an index per example, or per position), "values"
    # (regression), or "inputs" (the model rebuilds or imitates its input; y, when the data has
    # it, only labels pictures).
    targets: ClassVar[str] = "classes"
    target_dtype: ClassVar[str | None] = "int64"  # what train.py makes them (None: as they come)
    text_corpus: ClassVar[bool] = False  # trains on a text corpus (else on labelled texts)
    noise_inputs: ClassVar[tuple[str, ...]] = ()  # inputs drawn at random, not read from data
    # Why `specc evaluate` has nothing to score for this task's model, if it has not.
    evaluate_refusal: ClassVar[str | None] = None
    losses: ClassVar[tuple[str, ...]] = ()
    default_output: ClassVar[str] = "logits"  # the output's name when `output:` is not given
    runtime_class: ClassVar[str] = "specc.runtime.Model"
    # one optimizer over the model, so train.freeze and optimizer groups apply (a GAN has two)
    one_optimizer: ClassVar[bool] = True
    # Modules inlined into train.py besides the machinery (compiler/train/MACHINERY)
    train_modules: ClassVar[tuple[str, ...]] = ()

    @property
    def templates(self) -> dict[str, str]:
        """The templates of the generated files: the task's partials (templates/tasks/), which
        extend model.py.jinja and train.py.jinja; a task without a model partial uses the base."""
        from importlib import resources

        model = f"tasks/{self.name}.model.jinja"
        if not resources.files("specc.templates").joinpath(model).is_file():
            model = "model.py.jinja"
        return {"model.py": model, "train.py": f"tasks/{self.name}.train.jinja"}

    # -- parse

    def layout(self, raw: dict, src: Source, errors: list[Diagnostic]) -> Layout | None:
        """The chain of sections to expand; None (with errors) when the spec cannot be laid out."""
        if not isinstance(raw.get("model"), list):
            errors.append(src.error((), f"task: {self.name} needs a 'model:' list of layers"))
            return None
        return Layout((Section("model"),))

    # -- checks, before shapes

    def check(self, parsed: Parsed) -> list[Diagnostic]:
        """Rules on the expanded layers that only this task has."""
        return []

    def bind(self, parsed: Parsed, index: dict[str, int]) -> tuple[tuple, list[Diagnostic]]:
        """The layers with values they take from other layers (a decoder's state source)."""
        return parsed.layers, []

    def check_data(self, parsed: Parsed, text) -> list[Diagnostic]:
        """Rules between the layers and data read at compile time (text, pairs)."""
        return []

    # -- the training plan

    def plan_rules(self, parsed: Parsed, inferred: Inferred) -> list[Diagnostic]:
        """Rules on the inferred shapes that only this task has."""
        return []

    def output(self, parsed: Parsed, inferred: Inferred) -> Output:
        """The output of the model's last layer: class scores of some kind, or values."""
        last = parsed.layers[inferred.order[-1]]
        shape = inferred.out_shapes[last.name]
        return Output(classes_kind(last.type, shape), class_count(last.type, shape), shape)

    def default_loss(self, output: Output) -> str:
        return self.losses[0]

    def loss_problem(self, output: Output, loss: str) -> tuple[str, str] | None:
        """(message, hint) when `loss`, one of this task's, cannot work with this output: the
        class scores and the loss must agree on one unit (binary) or one per class."""
        binary = output.kind.startswith("binary")
        if loss == "binary_cross_entropy" and not binary and output.kind != "values":
            return (
                f"binary_cross_entropy needs one output unit, the model gives {output.shape}",
                "use cross_entropy for several classes",
            )
        if loss == "cross_entropy" and binary:
            return (
                "cross_entropy needs one output per class, the model gives one unit",
                "use binary_cross_entropy, or two output units",
            )
        return None

    def default_metrics(self, parsed: Parsed) -> list[str]:
        return ["accuracy"]

    def metrics(self, parsed: Parsed) -> tuple[str, ...]:
        """Prefixes of the metric names this task can report (top5 matches `top`)."""
        return ("accuracy", "top")

    def output_name(self, output: Output) -> str:
        """The ONNX output's name when the spec does not give one."""
        return DEFAULT_OUTPUT.get(output.kind, self.default_output)

    # -- the IR

    def named_outputs(self, parsed: Parsed) -> set[str]:
        """Layers whose output other methods read by name (an encoder's memories)."""
        return set()

    def build(self, b: Builder) -> TaskIR:
        """This task's pieces of the IR: states a step carries, extra model methods."""
        from ..ir import TaskIR

        return TaskIR()

    # -- data

    def check_targets(self, y, ir) -> str | None:
        """What is wrong with the data's targets `y` (a numpy array) for this model, or None.
        The default: class indices in range (-100 marks a padded position)."""
        import numpy as np

        if not np.issubdtype(y.dtype, np.integer):
            return "classification targets must be integer class indices"
        positions = ir.output_dims[1:-1]  # a class index per example, or per position
        if len(ir.output_dims) >= 2 and y.ndim != 1 + len(positions):
            return (
                f"targets have shape {tuple(y.shape[1:])} per example, but the model predicts "
                f"one class per {'example' if not positions else 'position of ' + str(positions)}"
            )
        n, real = ir.num_classes, y[y != IGNORE_INDEX]
        if n is not None and len(real) and (real.min() < 0 or real.max() >= n):
            return (
                f"targets range over {int(real.min())}..{int(real.max())}, but the model has "
                f"{n} classes (output {ir.output_dims})"
            )
        return None

    # -- evaluate: `specc evaluate`, and `specc export --quantize`'s guard

    def read_examples(self, run: Path, data: str | None, spec: dict, model):
        """The examples `specc evaluate --data DATA` scores: a split of the run (None: test, else
        val), or a file or folder in a format this task reads (evaluate.Examples)."""
        from ..evaluate import read_examples

        return read_examples(run, data, spec, model)

    def evaluate(self, job) -> dict[str, float]:
        """The loss and metrics of model.onnx's output on the examples (evaluate.Scoring), and
        whatever else this task measures through its other graphs."""
        return self.score(job.out, job.examples.y, job.model.output_kind, job.spec["train"])

    def score(self, out, y, kind: str, train: dict) -> dict[str, float]:
        """The loss and metrics of ONNX Runtime's outputs `out` against the targets `y` (numpy),
        defined as in the generated train.py."""
        from ..evaluate import scores

        return scores(out, y, kind, train)

    # -- export (needs torch: a task imports its export module only here)

    def parity_inputs(self, data, inputs: list[str]) -> dict | None:
        """Real examples for model.onnx's parity check, by input name (None: random inputs of the
        declared shapes); `inputs` are model.onnx's inputs, in order."""
        arrays = [data.x, *data.more]
        return dict(zip(inputs, arrays, strict=True)) if len(arrays) == len(inputs) else None

    def export(self, job: ExportJob) -> dict:
        """The graphs besides model.onnx, checked against PyTorch (raising UserError when they
        disagree); returns what report.json records of them."""
        return {}

    # -- the web page (compiler/web.py)

    def web_examples(self, x, data, rows, vocab) -> dict | None:
        """The page's example inputs when the task shows its own kind (prompts, sources; a GAN
        none): `x` the examples' first input, `data`/`rows` the run's data.npz and their rows,
        `vocab(key)` a tokenizer by name (None: none). None: rows of inputs or texts, as the page reads them."""
        return None


DEFAULT_OUTPUT = {
    "values": "prediction",
    "logits": "logits",
    "probabilities": "probabilities",
    "log_probabilities": "log_probabilities",
    "binary_logit": "logit",
    "binary_probability": "probability",
}


def classes_kind(last_type: str, shape: tuple) -> str:
    """Class scores by the last layer: one unit is a binary logit (or probability after a
    sigmoid); several are logits, or probabilities after softmax / log_softmax."""
    if len(shape) == 1 and shape[0] == 1:
        return "binary_probability" if last_type == "sigmoid" else "binary_logit"
    return {"softmax": "probabilities", "log_softmax": "log_probabilities"}.get(last_type, "logits")


def class_count(last_type: str, shape: tuple) -> int | None:
    if classes_kind(last_type, shape).startswith("binary"):
        return 2
    return shape[-1] if shape and isinstance(shape[-1], int) else None


# ----------------------------------------------------------------------------- shared rules


def step_by_step(src: Source, layer, path: tuple, who: str, verb: str, hint: str) -> list:
    """A recurrent layer of a model that runs one token at a time (a language model, a seq2seq
    decoder): left to right only, with an output at every step."""
    errors = []
    if getattr(layer, "bidirectional", False):
        errors.append(
            src.error(
                path + ("bidirectional",),
                f"{layer.name}: {who} {verb}s each token from the ones before it; "
                f"a bidirectional layer would read the tokens it has to {verb}",
                hint,
            )
        )
    if layer.output != "sequence":
        errors.append(
            src.error(
                path + ("output",),
                f"{layer.name}: {who} needs a prediction at every position",
                "set output: sequence",
            )
        )
    return errors


def token_scores(out, y, train: dict, defaults: tuple[str, ...]) -> dict[str, float]:
    """A model that predicts a token per position, scored as train.py scores it: cross-entropy
    per real token (targets -100 are padding); accuracy and top-k per position, averaged over
    each sequence's real positions, then over sequences; `exact`, whole sequences right;
    `perplexity`, exp(loss)."""
    import numpy as np

    logits = out.astype(np.float64)
    z = logits - logits.max(axis=-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    real = y != IGNORE_INDEX
    target = np.where(real, y, 0)
    picked = np.take_along_axis(logp, target[..., None], axis=-1)[..., 0]
    eps = (train.get("loss") or {}).get("label_smoothing", 0.0)
    per = -(1 - eps) * picked - eps * logp.mean(axis=-1)
    loss = float(per[real].mean())
    predicted = logits.argmax(axis=-1)
    count = np.maximum(real.sum(axis=1), 1)
    result = {"loss": loss}
    for m in list(train.get("metrics") or defaults) + ["perplexity"]:
        if m == "accuracy":
            result[m] = float((((predicted == y) & real).sum(axis=1) / count).mean())
        elif m == "exact":
            result[m] = float(((predicted == y) | ~real).all(axis=1).mean())
        elif m == "perplexity":
            result[m] = float(np.exp(loss))
        elif m.startswith("top"):
            top = np.argsort(-logits, axis=-1)[..., : int(m[3:])]
            hit = (top == y[..., None]).any(axis=-1) & real
            result[m] = float((hit.sum(axis=1) / count).mean())
    return result


def sequence_output(parsed: Parsed, inferred: Inferred, what: str, vocab: str) -> list:
    """A model that predicts a token per position ends in (batch, time, vocabulary)."""
    i = inferred.order[-1]
    out = inferred.out_shapes[parsed.layers[i].name]
    if len(out) == 2:
        return []
    return [
        parsed.source.error(
            parsed.origins[i].path,
            f"{what} outputs (batch, time, vocabulary), this one gives {out}",
            f"end with {{type: linear, out_features: {vocab}}}",
        )
    ]
