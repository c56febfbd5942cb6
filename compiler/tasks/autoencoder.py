"""task: autoencoder: an encoder to a code and a decoder back to the input (optionally a VAE).

`encoder:` and `decoder:` chain into one model that rebuilds its input; `latent:` puts a Gaussian
code between them (a VAE, trained on the negative ELBO with weight beta on the KL term), and
`noise:` corrupts the inputs in training (a denoising autoencoder). Besides model.onnx it exports
encoder.onnx and decoder.onnx; served by `specc.runtime.Autoencoder` (encode, decode, sample).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..expand import Section, Synthetic
from ..ir import TaskIR
from .base import Layout, Output, Task

LATENT_LAYER = "latent"  # the name of the layer a `latent:` section becomes


@dataclass(frozen=True)
class AutoencoderIR:
    """Where the encoder ends and the decoder starts, for encode() and decode()."""

    encoder: tuple[int, ...]  # positions in ModelIR.nodes
    decoder: tuple[int, ...]
    code_var: str  # the variable decode() starts from (set to z)
    encoder_out: str  # the variable holding the encoder's features (or the code, without a latent)
    latent_attr: str | None  # self.<attr> of the VAE latent
    code_dims: tuple  # ("batch", D)
    beta: float
    warmup_epochs: float
    noise: dict | None  # {type, std, p}


class Autoencoder(Task):
    name = "autoencoder"
    summary = "an encoder to a code and a decoder back to the input; latent: makes it a VAE"
    reads = ("encoder", "decoder", "latent", "noise")
    sections = ("encoder", "decoder")
    losses = ("mse", "binary_cross_entropy", "l1")
    data_types = ("builtin", "npz", "csv", "parquet", "datasets", "images")
    targets = "inputs"
    target_dtype = None  # labels, when the data has them, only colour pictures
    default_output = "prediction"
    runtime_class = "specc.runtime.Autoencoder"
    train_modules = ("specc.runtime.png", "specc.compiler.train.images")

    def layout(self, raw, src, errors):
        missing = [k for k in self.sections if not isinstance(raw.get(k), list)]
        for key in missing:
            errors.append(src.error((), f"task: autoencoder needs a '{key}:' list of layers"))
        if missing:
            return None
        chain = [Section("encoder")]
        latent = raw.get("latent")
        if isinstance(latent, dict):
            layer = {"type": "gaussian_latent", "name": LATENT_LAYER, "dim": latent.get("dim")}
            chain.append(Synthetic("latent", layer, ("latent",)))
        chain.append(Section("decoder"))
        return Layout(tuple(chain))

    def export(self, job):
        from ..export.autoencoder import export

        return export(job)

    def check_targets(self, y, ir):
        return None  # the target is the input; y, if any, labels pictures only

    def plan_rules(self, parsed, inferred):
        i = inferred.order[-1]
        out = inferred.out_shapes[parsed.layers[i].name]
        first = tuple(next(iter(parsed.inputs.values())).shape)
        if tuple(out) == first:
            return []
        return [
            parsed.source.error(
                parsed.origins[i].path,
                f"the decoder gives {out}, but it must rebuild the input's shape {first}",
                "end the decoder with a layer of the input's shape (e.g. reshape)",
            )
        ]

    def output(self, parsed, inferred) -> Output:
        last = parsed.layers[inferred.order[-1]]
        return Output("values", None, inferred.out_shapes[last.name])

    def default_metrics(self, parsed) -> list[str]:
        return ["mse", "recon", "kl", "elbo"] if parsed.spec.latent else ["mse"]

    def metrics(self, parsed) -> tuple[str, ...]:
        return ("mse", "mae") + (("recon", "kl", "elbo") if parsed.spec.latent else ())

    def build(self, b):
        """forward() keeps the latent's mean and log-variance (the KL term); encode() runs the
        encoder to the code, decode() the decoder from it."""
        spec = b.parsed.spec
        sections = [b.parsed.section(built.index) for built in b.built]
        for built in b.built:
            if built.layer.is_latent:
                node = built.node
                line = (
                    f"{node.var}, latent_mean, latent_log_var = self.{built.ident}({built.args[0]})"
                )
                built.node = replace(node, forward_line=line)
        nodes = b.nodes
        encoder = tuple(p for p, s in enumerate(sections) if s == "encoder")
        latent = next((p for p, s in enumerate(sections) if s == "latent"), None)
        last_code = latent if latent is not None else encoder[-1]
        code = b.built[last_code].layer
        return TaskIR(
            autoencoder=AutoencoderIR(
                encoder=encoder,
                decoder=tuple(p for p, s in enumerate(sections) if s == "decoder"),
                code_var=nodes[last_code].var,
                encoder_out=nodes[encoder[-1]].var,
                latent_attr=nodes[latent].attr if latent is not None else None,
                code_dims=("batch", *b.inferred.out_shapes[code.name]),
                beta=spec.latent.beta if spec.latent else 0.0,
                warmup_epochs=spec.latent.warmup_epochs if spec.latent else 0.0,
                noise=spec.noise.model_dump() if spec.noise else None,
            )
        )

    def evaluate(self, job):
        """How well model.onnx rebuilds its input: mse and mae per element, and for a VAE the
        ELBO's terms per example as train.py sums them (the reconstruction under the spec's
        loss, the KL of encoder.onnx's mean and log-variance against N(0, I)), and the loss."""
        import numpy as np

        from specc.runtime import Autoencoder

        x = next(iter(job.examples.feeds.values())).astype(np.float64)
        out = job.out.astype(np.float64).reshape(x.shape)
        n = len(x)
        err = (out - x).reshape(n, -1)
        loss = job.spec["train"]["loss"]["type"]
        if loss == "binary_cross_entropy":
            p = np.clip(out, 1e-7, 1 - 1e-7)
            per = -(x * np.log(p) + (1 - x) * np.log(1 - p))
        else:
            per = np.abs(out - x) if loss == "l1" else (out - x) ** 2
        per = per.reshape(n, -1)
        scores = {"mse": float((err**2).mean()), "mae": float(np.abs(err).mean())}
        latent = job.spec.get("latent")
        if latent is None:
            return {"loss": float(per.mean()), **scores}
        if not job.graphs:  # scoring another model file: the KL term needs encoder.onnx
            return scores
        mean, log_var = Autoencoder(job.run, device=job.device).encode(x, log_var=True)
        mean, log_var = mean.astype(np.float64), log_var.astype(np.float64)
        kl = 0.5 * (mean**2 + np.exp(log_var) - 1 - log_var).sum(axis=1)
        recon = per.sum(axis=1)
        beta = latent.get("beta", 1.0)
        return {
            "loss": float((recon + beta * kl).mean()),
            **scores,
            "recon": float(recon.mean()),
            "kl": float(kl.mean()),
            "elbo": float(-(recon + kl).mean()),
        }
