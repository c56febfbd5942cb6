"""task: regression: real values out (a steering angle, a sum), trained with mse, l1 or huber."""

from __future__ import annotations

from .base import Output, Task


class Regression(Task):
    name = "regression"
    summary = "real values out, trained with mse, l1 or huber"
    losses = ("mse", "l1", "huber")
    data_types = ("builtin", "npz", "csv", "images")
    targets = "values"

    def output(self, parsed, inferred) -> Output:
        last = parsed.layers[inferred.order[-1]]
        return Output("values", None, inferred.out_shapes[last.name])

    def default_metrics(self, parsed) -> list[str]:
        return ["mse", "mae"]

    def metrics(self, parsed) -> tuple[str, ...]:
        return ("mse", "mae")
