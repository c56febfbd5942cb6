"""task: gan: a generator that turns noise into inputs, against a discriminator that tells them
from real ones, trained in alternating updates with two optimizers.

`generator:` reads the noise `z` (latent.dim values from N(0, I), an input specc adds) and ends
in the data input's shape; `discriminator:` reads an input and ends in one logit. model.onnx
(and generator.onnx) is the generator; served by `specc.runtime.Generator` (`specc sample`).
"""

from __future__ import annotations

from dataclasses import dataclass

from specc.runtime.contracts import GAN_NOISE

from ..expand import Section
from ..ir import InputIR, TaskIR
from .base import Layout, Output, Task

GAN_METRICS = ("d_loss", "g_loss", "d_real", "d_fake")  # d_real/d_fake: mean D(x) on real / fake


@dataclass(frozen=True)
class GanIR:
    """The two chains of a GAN: forward() is the generator, discriminate() the discriminator."""

    generator: tuple[int, ...]  # positions in ModelIR.nodes
    discriminator: tuple[int, ...]
    data: InputIR  # the data input the discriminator reads
    logit_var: str
    generator_attrs: tuple[str, ...]  # modules whose parameters the generator's optimizer owns
    discriminator_attrs: tuple[str, ...]
    dim: int
    d_steps: int  # train.gan: discriminator updates per generator update
    loss: str  # non_saturating | minimax
    label_smoothing: float
    d_lr: float | None  # the discriminator's lr (None: the optimizer's)


class Gan(Task):
    name = "gan"
    summary = "a generator against a discriminator, sampled with `specc sample`"
    reads = ("generator", "discriminator", "latent")
    sections = ("generator", "discriminator")
    losses = ("adversarial",)
    data_types = ("builtin", "npz", "csv", "parquet", "datasets", "images")
    targets = "inputs"
    target_dtype = None  # labels, when the data has them, only colour pictures
    noise_inputs = (GAN_NOISE,)
    evaluate_refusal = (
        "a GAN's generator reads noise, so there is no new data to score it on; its training "
        "figures (d_loss, g_loss, d_real, d_fake) are in report.json and metrics.png, and "
        "`specc sample DIR` draws from it"
    )
    train_keys = {"gan": "sets a GAN's alternating updates"}
    one_optimizer = False
    runtime_class = "specc.runtime.Generator"

    def web_examples(self, x, data, rows, vocab) -> dict:
        return {}  # the page draws latent codes; no examples to show

    train_modules = ("specc.runtime.png", "specc.compiler.train.images")

    def layout(self, raw, src, errors):
        missing = [k for k in self.sections if not isinstance(raw.get(k), list)]
        for key in missing:
            errors.append(src.error((), f"task: gan needs a '{key}:' list of layers"))
        latent = raw.get("latent")
        if not isinstance(latent, dict) or not isinstance(latent.get("dim"), int):
            errors.append(
                src.error(
                    ("latent",) if "latent" in raw else (),
                    "a GAN needs the size of its generator's input: latent: {dim: N}",
                )
            )
            return None
        inputs = raw.get("inputs")
        if not isinstance(inputs, dict) or len(inputs) != 1 or GAN_NOISE in inputs:
            errors.append(
                src.error(
                    ("inputs",),
                    f"a GAN takes one data input (not named '{GAN_NOISE}', the generator's noise)",
                )
            )
            return None
        if missing:
            return None
        (data_input,) = inputs
        chain = (Section("generator", start=GAN_NOISE), Section("discriminator", start=data_input))
        return Layout(chain, {GAN_NOISE: {"shape": [latent["dim"]]}})

    def parity_inputs(self, data, inputs):
        return None  # the generator reads noise, not the data

    def export(self, job):
        """model.onnx is the generator; generator.onnx names it for applications."""
        import shutil

        shutil.copyfile(job.folder / "model.onnx", job.folder / "generator.onnx")
        job.log(f"wrote {job.folder / 'generator.onnx'}")
        return {}

    def check_targets(self, y, ir):
        return None  # the target is the input; y, if any, labels pictures only

    def plan_rules(self, parsed, inferred):
        """The generator makes inputs; the discriminator turns one into a single logit."""
        src, origins = parsed.source, parsed.origins
        errors = []
        data_name = next(n for n in parsed.inputs if n != GAN_NOISE)
        data_shape = tuple(parsed.inputs[data_name].shape)
        last = {origins[i].section: i for i in inferred.order}
        gen, disc = last.get("generator"), last.get("discriminator")
        made = inferred.out_shapes[parsed.layers[gen].name] if gen is not None else None
        if gen is not None and made != data_shape:
            errors.append(
                src.error(
                    origins[gen].path,
                    f"the generator makes {made}, but input '{data_name}' is {data_shape}",
                    "end the generator with a layer of the input's shape",
                )
            )
        judged = inferred.out_shapes[parsed.layers[disc].name] if disc is not None else None
        if disc is not None and judged != (1,):
            errors.append(
                src.error(
                    origins[disc].path,
                    f"the discriminator must end in one logit (batch, 1), this one gives {judged}",
                    "end it with {type: linear, out_features: 1} (no sigmoid: the loss applies it)",
                )
            )
        if parsed.spec.train.schedule is not None:
            errors.append(
                src.error(
                    ("train", "schedule"), "learning-rate schedules are not supported for GANs yet"
                )
            )
        return errors

    def output(self, parsed, inferred) -> Output:
        last = parsed.layers[inferred.order[-1]]
        return Output("values", None, inferred.out_shapes[last.name])

    def output_name(self, output: Output) -> str:
        return "sample"

    def default_metrics(self, parsed) -> list[str]:
        return list(GAN_METRICS)

    def metrics(self, parsed) -> tuple[str, ...]:
        return GAN_METRICS

    def build(self, b):
        """forward() is the generator (it reads z only); discriminate() the discriminator."""
        sections = [b.parsed.section(built.index) for built in b.built]
        nodes = b.nodes
        generator = tuple(p for p, s in enumerate(sections) if s == "generator")
        discriminator = tuple(p for p, s in enumerate(sections) if s == "discriminator")
        gan = GanIR(
            generator=generator,
            discriminator=discriminator,
            data=next(i for i in b.inputs if i.name != GAN_NOISE),
            logit_var=nodes[discriminator[-1]].var,
            generator_attrs=tuple(nodes[p].attr for p in generator if nodes[p].attr),
            discriminator_attrs=tuple(nodes[p].attr for p in discriminator if nodes[p].attr),
            dim=b.parsed.spec.latent.dim,
            **b.parsed.spec.train.gan.model_dump(),
        )
        return TaskIR(
            gan=gan,
            inputs=tuple(i for i in b.inputs if i.name == GAN_NOISE),
            output_layer=b.built[generator[-1]].index,
        )
