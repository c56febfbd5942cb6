"""task: regression: real values out (a steering angle, a sum), trained with mse, l1 or huber."""

from __future__ import annotations

import math

from .base import Output, Task


class Regression(Task):
    name = "regression"
    summary = "real values out, trained with mse, l1 or huber"
    losses = ("mse", "l1", "huber")
    data_types = ("builtin", "npz", "csv", "parquet", "datasets", "images")
    targets = "values"
    target_dtype = "float32"

    def check_targets(self, y, ir):
        out = ir.output_dims[1:]
        if all(isinstance(d, int) for d in out) and math.prod(y.shape[1:]) != math.prod(out):
            return f"targets have shape {tuple(y.shape[1:])}, but the model outputs {tuple(out)}"
        return None

    def output(self, parsed, inferred) -> Output:
        last = parsed.layers[inferred.order[-1]]
        return Output("values", None, inferred.out_shapes[last.name])

    def default_metrics(self, parsed) -> list[str]:
        return ["mse", "mae"]

    def metrics(self, parsed) -> tuple[str, ...]:
        return ("mse", "mae")
