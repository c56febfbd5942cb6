"""The VAE latent with the reparameterisation trick. Inlined into model.py by specc (layers/_helpers/__init__.py)."""

from __future__ import annotations

import torch
from torch import nn


class GaussianLatent(nn.Module):
    """The VAE latent: mean and log-variance from the features (Kingma and Welling 2014).

    forward returns (code, mean, log_var): in training the code is a sample drawn with the
    reparameterisation trick, mean + eps * exp(log_var / 2), so gradients reach both; in
    evaluation it is the mean.
    """

    def __init__(self, in_features: int, dim: int):
        super().__init__()
        self.mean = nn.Linear(in_features, dim)
        self.log_var = nn.Linear(in_features, dim)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mean, log_var = self.mean(h), self.log_var(h)
        if not self.training:
            return mean, mean, log_var
        return mean + torch.randn_like(mean) * torch.exp(0.5 * log_var), mean, log_var
