"""Inputs to run a generated model on while exporting it and checking it: every graph's example
and the parity gate's other shapes."""

from __future__ import annotations

import torch


def example_feeds(ir, batch: int, dynamic_size: int, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for inp in ir.inputs:
        shape = [batch] + [d if isinstance(d, int) else dynamic_size for d in inp.dims[1:]]
        if inp.dtype == "int64" and len(shape) == 1:  # lengths: 1..dynamic_size
            out[inp.name] = torch.randint(1, dynamic_size + 1, shape, generator=g)
        elif inp.dtype == "int64":
            out[inp.name] = torch.randint(0, 2, shape, generator=g)
        else:
            out[inp.name] = torch.randn(shape, generator=g)
    return out
