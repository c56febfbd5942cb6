"""Scoring a whole split: the mean loss and metrics, in eval mode."""

from __future__ import annotations

import torch

from ._spec import derived_metrics, evaluate_batch


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    xs: tuple[torch.Tensor, ...],
    y: torch.Tensor,
    device,
    autocast,
    batch_size: int = 1024,
) -> dict[str, float]:
    """Mean loss and metrics over a whole split, in eval mode (dropout off, batchnorm frozen)."""
    was_training = model.training
    model.eval()
    sums: dict[str, torch.Tensor] = {}
    draws = torch.Generator().manual_seed(12345)  # the same random draws in every evaluation
    for start in range(0, len(y), batch_size):
        xb = tuple(x[start : start + batch_size].to(device) for x in xs)
        yb = y[start : start + batch_size].to(device)
        with autocast():
            batch = evaluate_batch(model, xb, yb, draws)
        for k, v in batch.items():
            sums[k] = sums.get(k, 0.0) + v.cpu()
    model.train(was_training)
    return derived_metrics({k: float(v) / len(y) for k, v in sums.items()})
