"""task: language_model: next-token prediction over text, sampled one token at a time.

The model reads token ids left to right (recurrent layers and layers that act on each step
alone) and predicts a distribution over the vocabulary at every position. Besides model.onnx it
exports `step.onnx`, which carries the recurrent state from call to call, so generation feeds
one token per call; served by `specc.runtime.LanguageModel` (`specc sample`).
"""

from __future__ import annotations

from dataclasses import replace

from ..ir import TaskIR, state_irs
from .base import Task, sequence_output, step_by_step, token_scores


class LanguageModel(Task):
    name = "language_model"
    summary = "next-token prediction over text, sampled one token at a time with `specc sample`"
    losses = ("cross_entropy",)
    text_corpus = True

    def web_examples(self, x, data, rows, vocab) -> dict:
        v = vocab("text")
        prompts = [p for p in ("The ", "the ", "A ") if not v.unknown(v.split(p))]
        return {"prompts": prompts or [v.decode(x[0][:4])]}

    train_keys = {"tbptt": "carries a language model's state across chunks of a sequence"}
    runtime_class = "specc.runtime.LanguageModel"

    def check(self, parsed):
        src = parsed.source
        errors = []
        first = next(iter(parsed.inputs.values()))
        if first.dtype != "int64" or len(first.shape) != 1 or isinstance(first.shape[0], int):
            errors.append(
                src.error(
                    ("inputs",),
                    "a language model reads token ids: its first input must be "
                    "{shape: [time], dtype: int64}",
                )
            )
        for layer, origin in zip(parsed.layers, parsed.origins, strict=True):
            if layer.recurrent:
                errors += step_by_step(
                    src,
                    layer,
                    origin.path,
                    "a language model",
                    "predict",
                    "set bidirectional: false",
                )
            elif not layer.per_step:
                errors.append(
                    src.error(
                        origin.path + ("type",),
                        f"{layer.name}: a {layer.type} layer mixes time steps; a language model "
                        "can only use recurrent layers and layers that act on each step alone",
                    )
                )
        return errors

    def export(self, job):
        from ..export.language_model import export

        return export(job)

    def plan_rules(self, parsed, inferred):
        return sequence_output(parsed, inferred, "a language model", "vocab")

    def build(self, b):
        """step() carries every recurrent layer's state; initial_state() starts it."""
        states, initial = [], []
        for built in b.built:
            layer = built.layer
            if not layer.carries_state:
                continue
            carried = state_irs(b, built)
            states += carried
            module = f"self.{built.ident}"
            line = layer.step_line(module, built.args, built.node.var, [s.var for s in carried])
            built.node = replace(built.node, step_line=line)
            initial.append(layer.initial_state_source(module))
        return TaskIR(states=tuple(states), initial_states=tuple(initial))

    def read_examples(self, run, data, spec, model):
        """A split of the run, or a text file (or a folder of .txt/.md files) read as the data
        stage reads a corpus: <bos>, the tokens, <eos>, cut into windows of seq_len (the rest
        is one shorter window), tokens outside the vocabulary as <unk>."""
        from ..evaluate import read_corpus

        return read_corpus(run, data, spec, model, super().read_examples)

    def evaluate(self, job):
        """Cross-entropy per token, its exp (perplexity) and next-token accuracy."""
        return token_scores(job.out, job.examples.y, job.spec["train"], ("accuracy",))
