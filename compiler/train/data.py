"""The training data: data.npz in, seeded splits, and the batches of each epoch in an order that
any process can recompute (so a resumed run and N processes see what one run would)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ._spec import DATA_INPUTS, TARGET_DTYPE, TEST_SPLIT, VAL_SPLIT
from .errors import TrainingError


def load_data(path: Path) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """The inputs in DATA_INPUTS order (arrays x, x1, x2, ...) and the targets y."""
    keys = ["x"] + [f"x{i}" for i in range(1, len(DATA_INPUTS))]
    try:
        with np.load(path, allow_pickle=False) as f:
            xs, y = [f[k] for k in keys], f["y"]
    except (OSError, KeyError, ValueError) as e:
        raise TrainingError(f"cannot read {path} (arrays {', '.join(keys)} and y expected): {e}") from None
    if TARGET_DTYPE is None:  # labels kept for pictures only: int64 if they are integers
        y = y.astype(np.int64 if np.issubdtype(y.dtype, np.integer) else np.float32)
    else:
        y = y.astype(TARGET_DTYPE)
    for i, (name, spec) in enumerate(DATA_INPUTS.items()):
        xs[i] = xs[i].astype(np.int64 if spec["dtype"] == "int64" else np.float32)
        want = tuple(spec["dims"][1:])  # named dims (time) take any size
        shape = xs[i].shape
        fits = len(shape) == len(want) + 1 and all(isinstance(w, str) or w == d for w, d in zip(want, shape[1:]))
        if not fits or len(shape) == 0 or shape[0] != len(y):
            raise TrainingError(
                f"{path}: input '{name}' has shape {shape[1:]} ({shape[0] if shape else 0} inputs, {len(y)} targets); the model expects {want}"
            )
    return tuple(xs), y


def split_indices(n: int, seed: int) -> dict[str, np.ndarray]:
    """Seeded train/validation/test split; with VAL_SPLIT 0 the model is validated on its train set."""
    order = np.random.default_rng(seed).permutation(n)
    n_test, n_val = round(n * TEST_SPLIT), round(n * VAL_SPLIT)
    test, val, train = order[:n_test], order[n_test : n_test + n_val], order[n_test + n_val :]
    return {"train": np.sort(train), "val": np.sort(val if n_val else train), "test": np.sort(test)}


class Batches(torch.utils.data.Dataset):
    """Indexed by a whole batch of positions: one gather per batch, not one per example."""

    def __init__(self, xs: tuple[torch.Tensor, ...], y: torch.Tensor):
        self.xs, self.y = xs, y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, idx: torch.Tensor) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
        return tuple(x[idx] for x in self.xs), self.y[idx]


class InProcessBatches:
    """Batches gathered in this process: iterating it is iterating the sampler."""

    def __init__(self, order, xs: tuple[torch.Tensor, ...], y: torch.Tensor):
        self.order, self.xs, self.y = order, xs, y

    def __iter__(self):
        for idx in self.order:
            yield tuple(x[idx] for x in self.xs), self.y[idx]


class EpochOrder(torch.utils.data.Sampler):
    """The batches of one epoch, shuffled by a generator seeded with (seed, epoch).

    Any epoch's order can be recomputed, so a resumed run skips the batches it already did and
    sees exactly what an uninterrupted run would. Under DDP every process takes its slice of each
    global batch, so N processes step on the same examples as one process would.
    """

    def __init__(self, n: int, batch_size: int, seed: int, rank: int = 0, world: int = 1):
        self.n, self.batch_size, self.seed, self.rank, self.world = n, batch_size, seed, rank, world
        self.epoch, self.skip = 1, 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch, self.skip = epoch, skip

    def batches_per_epoch(self) -> int:
        full, rest = divmod(self.n, self.batch_size)
        return full + (1 if rest >= self.world else 0)  # a last batch too small to share is dropped

    def __iter__(self):
        order = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch))
        batches = order.split(self.batch_size)[: self.batches_per_epoch()]
        for batch in batches[self.skip :]:
            yield batch.tensor_split(self.world)[self.rank] if self.world > 1 else batch

    def __len__(self) -> int:
        return self.batches_per_epoch() - self.skip
