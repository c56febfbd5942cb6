"""Inputs to run a generated model on while exporting it and checking it: every graph's example
and the parity gate's other shapes.

The rule is model.py's own `example_inputs` (token ids over the vocabulary, lengths from 1 to the
dynamic size, normals elsewhere): the exporter calls the generated file rather than keeping a
copy of it, seeded so every export and check is repeatable.
"""

from __future__ import annotations

import sys

import torch


def example_feeds(
    model: torch.nn.Module, batch: int, dynamic_size: int, seed: int
) -> dict[str, torch.Tensor]:
    """`example_inputs` of the model.py that defined `model`, drawn from a seeded generator."""
    module = sys.modules[type(model).__module__]
    generator = torch.Generator().manual_seed(seed)
    return module.example_inputs(batch, dynamic_size, generator=generator)
