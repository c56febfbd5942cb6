"""gaussian_latent: the VAE latent (made from a spec's `latent:` section between encoder and decoder)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, PositiveInt

from .base import Layer, ShapeError, args, fmt_shape, need_int


class GaussianLatent(Layer):
    """(batch, features) -> (batch, dim): a sample of N(mean, exp(log_var)) in training, the mean in eval.

    Mean and log-variance are two linear maps of the features; the sample uses the
    reparameterisation trick (mean + eps * std), so gradients reach both.
    """

    type: Literal["gaussian_latent"]
    dim: PositiveInt = Field(description="Size of the code.")

    doc_example: ClassVar[str] = "- {type: gaussian_latent, dim: 2}"
    doc_shapes: ClassVar[str] = "(F) -> (dim); written as `latent:`"
    is_latent: ClassVar[bool] = True

    def infer(self, shapes):
        if len(shapes[0]) != 1:
            raise ShapeError(
                f"the latent reads the encoder's features as a vector, got {fmt_shape(shapes[0])}",
                hint="end the encoder with flatten (and a linear layer)",
            )
        need_int(shapes[0][0], "the latent's input features")
        return (self.dim,)

    def flops(self, shapes, out):
        return 2 * (2 * shapes[0][0] + 1) * self.dim  # the mean's and the log-variance's maps

    def param_count(self, shapes):
        return 2 * (shapes[0][0] * self.dim + self.dim)

    def helpers(self):
        return ("GaussianLatent",)

    def module(self, shapes):
        return f"GaussianLatent({args(shapes[0][0], self.dim)})"

    def call(self, module, args, shapes):
        return f"{module}({args[0]})[0]"
