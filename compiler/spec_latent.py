"""The `latent:` and `noise:` sections of a spec: what sits between an autoencoder's halves, what
a GAN's generator draws from, and how a denoising autoencoder corrupts its inputs."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt


class Strict(BaseModel):
    model_config = ConfigDict(
        extra="forbid", populate_by_name=True, frozen=True, allow_inf_nan=False
    )


class LatentSpec(Strict):
    """The VAE latent: a Gaussian code with a KL term against N(0, I)."""

    type: Literal["gaussian"] = Field("gaussian", description="The latent distribution.")
    dim: PositiveInt = Field(description="Size of the code.")
    beta: float = Field(1.0, ge=0.0, description="Weight of the KL term (beta-VAE).")
    warmup_epochs: float = Field(
        0.0, ge=0.0, description="Raise beta linearly from 0 over this many epochs (KL annealing)."
    )


class NoiseSpec(Strict):
    """Input corruption for a denoising autoencoder."""

    type: Literal["gaussian", "masking"] = Field(
        description="gaussian: add N(0, std^2); masking: zero each input element with probability p."
    )
    std: float = Field(0.1, gt=0.0, description="gaussian: the noise's standard deviation.")
    p: float = Field(0.25, gt=0.0, lt=1.0, description="masking: the chance an element is zeroed.")
