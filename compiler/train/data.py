"""The training data: data.npz memory-mapped, seeded splits, and the batches of each epoch in an
order that any process can recompute (so a resumed run and N processes see what one run would).

data.npz is read without loading it: its members are stored uncompressed, so each input is a
np.memmap (shape, dtype, where it lies in the file) and a batch reads only its own rows from
disk (under DDP, each process only its slice of each batch); peak memory does not grow with the
data. The targets are small (one value or one sequence per example) and are loaded.
"""

from __future__ import annotations

import math
import os
import zipfile
from pathlib import Path

import numpy as np
import torch

from ._spec import AUGMENT, DATA_INPUTS, TARGET_DTYPE, TEST_SPLIT, VAL_SPLIT
from .errors import TrainingError


def open_npz(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a .npz by name: memory-mapped where stored uncompressed (np.savez, the data
    stage), read whole where compressed (np.savez_compressed)."""
    arrays = {}
    try:
        with zipfile.ZipFile(path) as z, open(path, "rb") as f:
            for info in z.infolist():
                name = info.filename.removesuffix(".npy")
                if info.compress_type != zipfile.ZIP_STORED:
                    with z.open(info) as member:
                        arrays[name] = np.lib.format.read_array(member, allow_pickle=False)
                    continue
                f.seek(info.header_offset)  # the local header: 30 bytes, the name, an extra field
                local = f.read(30)
                f.seek(
                    info.header_offset
                    + 30
                    + int.from_bytes(local[26:28], "little")
                    + int.from_bytes(local[28:30], "little")
                )
                version = np.lib.format.read_magic(f)
                read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shape, fortran, dtype = read(f)
                if dtype.hasobject:
                    raise ValueError(f"array '{name}' holds Python objects")
                if math.prod(shape) == 0:
                    arrays[name] = np.empty(shape, dtype)
                else:
                    arrays[name] = np.memmap(path, dtype, "r", f.tell(), shape, "F" if fortran else "C")
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise TrainingError(f"cannot read {path} as .npz: {e}") from None
    return arrays


def load_data(path: Path) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """The inputs in DATA_INPUTS order (arrays x, x1, x2, ..., memory-mapped) and the targets y
    (in memory, as TARGET_DTYPE)."""
    keys = ["x"] + [f"x{i}" for i in range(1, len(DATA_INPUTS))]
    arrays = open_npz(path)
    missing = [k for k in [*keys, "y"] if k not in arrays]
    if missing:
        raise TrainingError(f"cannot read {path}: arrays {', '.join(keys)} and y expected, it has no {missing[0]}")
    xs, y = [arrays[k] for k in keys], arrays["y"]
    if TARGET_DTYPE is None:  # labels kept for pictures only: int64 if they are integers
        y = y.astype(np.int64 if np.issubdtype(y.dtype, np.integer) else np.float32)
    else:
        y = y.astype(TARGET_DTYPE)
    for i, (name, spec) in enumerate(DATA_INPUTS.items()):
        want = tuple(spec["dims"][1:])  # named dims (time) take any size
        shape = xs[i].shape
        fits = len(shape) == len(want) + 1 and all(isinstance(w, str) or w == d for w, d in zip(want, shape[1:]))
        if not fits or len(shape) == 0 or shape[0] != len(y):
            raise TrainingError(
                f"{path}: input '{name}' has shape {shape[1:]} ({shape[0] if shape else 0} inputs, {len(y)} targets); the model expects {want}"
            )
    return tuple(xs), y


def given_splits(path: Path) -> np.ndarray | None:
    """data.npz's `split` array (0 train, 1 validation, 2 test) when the data came as separate files."""
    split = open_npz(path).get("split")
    return None if split is None else np.asarray(split)


def split_indices(n: int, seed: int, given: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Seeded train/validation/test split; with VAL_SPLIT 0 the model is validated on its train set.
    Separate files (`given`) keep their split; without a validation file, VAL_SPLIT of train is held out."""
    if given is None:
        order = np.random.default_rng(seed).permutation(n)
        n_test, n_val = round(n * TEST_SPLIT), round(n * VAL_SPLIT)
        test, val, train = order[:n_test], order[n_test : n_test + n_val], order[n_test + n_val :]
    else:
        train, val, test = (np.flatnonzero(given == code) for code in range(3))
        if not len(val) and VAL_SPLIT:
            order = np.random.default_rng(seed).permutation(train)
            n_val = round(len(train) * VAL_SPLIT)
            val, train = order[:n_val], order[n_val:]
        n_val = len(val)
    return {"train": np.sort(train), "val": np.sort(val if n_val else train), "test": np.sort(test)}


class Rows:
    """One input's examples in a split: positions into a (memory-mapped) array, read and cast
    when indexed by a batch or a slice, so a split is never in memory whole."""

    def __init__(self, array: np.ndarray, idx: np.ndarray, dtype):
        self.array, self.idx, self.dtype = array, idx, dtype

    def __len__(self) -> int:
        return len(self.idx)

    @property
    def shape(self) -> tuple:
        return (len(self.idx), *self.array.shape[1:])

    def __getitem__(self, key) -> torch.Tensor:
        rows = np.atleast_1d(self.idx[key.numpy() if isinstance(key, torch.Tensor) else key])
        return torch.from_numpy(np.ascontiguousarray(self.read(rows), dtype=self.dtype))

    def read(self, rows: np.ndarray) -> np.ndarray:
        """The rows of the array, read from its file with pread (runs of consecutive rows in one
        call) rather than through the mapping: pages touched through a mapping count in the
        process's RSS until the kernel takes them back, so reading a large set that way would
        look like holding it. Arrays in memory are simply indexed."""
        a = self.array
        if not isinstance(a, np.memmap) or not hasattr(os, "preadv"):
            return a[rows]
        if getattr(self, "fd", None) is None:
            self.fd = os.open(a.filename, os.O_RDONLY)
        size = a.itemsize * math.prod(a.shape[1:])
        out = np.empty((len(rows), *a.shape[1:]), a.dtype)
        flat = out.reshape(len(rows), -1).view(np.uint8)
        starts = np.flatnonzero(np.diff(rows, prepend=-2) != 1)
        for first, end in zip(starts, [*starts[1:], len(rows)]):
            view, at = memoryview(flat[first:end]).cast("B"), a.offset + int(rows[first]) * size
            while len(view):  # a regular file gives all at once; loop for the rare short read
                got = os.preadv(self.fd, [view], at)
                if not got:
                    raise TrainingError(f"{a.filename} ends before row {rows[first]} (truncated?)")
                view, at = view[got:], at + got
        return out

    def mean_std(self, chunk: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-feature mean and (unbiased) standard deviation, two passes in float64 chunks."""
        total = np.zeros(self.array.shape[1:])
        for start in range(0, len(self), chunk):
            total += self[start : start + chunk].double().sum(dim=0).numpy()
        mean = total / len(self)
        squares = np.zeros_like(mean)
        for start in range(0, len(self), chunk):
            squares += ((self[start : start + chunk].double().numpy() - mean) ** 2).sum(axis=0)
        std = np.sqrt(squares / max(len(self) - 1, 1))
        return torch.from_numpy(mean).float(), torch.from_numpy(std).float()


LOAD_BYTES = 256 << 20  # an input this small is read into memory once: the fastest batches


def splits_of(xs: tuple[np.ndarray, ...], y: np.ndarray, splits: dict[str, np.ndarray]) -> dict:
    """{split: (inputs as Rows, targets as a tensor)}. Inputs up to LOAD_BYTES are read into
    memory (a batch then costs one gather, as from a tensor); larger ones stay on disk and each
    batch reads its rows (about one system call per row), so memory stays flat as data grows."""
    dtypes = [np.int64 if spec["dtype"] == "int64" else np.float32 for spec in DATA_INPUTS.values()]
    xs = tuple(np.array(x) if x.nbytes <= LOAD_BYTES else x for x in xs)
    return {
        name: (tuple(Rows(x, idx, dtype) for x, dtype in zip(xs, dtypes)), torch.from_numpy(y[idx]))
        for name, idx in splits.items()
    }


def augment(x: torch.Tensor, generator: torch.Generator, settings: dict | None = None) -> torch.Tensor:
    """AUGMENT applied to a batch of images (N, C, H, W), each example its own draw: crop (pad
    with edge values, crop back at a random offset), flip (left-right, probability 1/2), rotate
    (up to +-degrees, bilinear, edges repeated) and color_jitter (brightness and contrast scaled
    by up to 1 +- the value, around each image's mean). `settings` stands in for AUGMENT (specc's
    picture of augmented examples)."""
    settings = settings or AUGMENT
    n, _, h, w = x.shape

    def uniform(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(n, generator=generator)

    if settings["crop"]:
        pad = settings["crop"]
        padded = torch.nn.functional.pad(x, (pad, pad, pad, pad), mode="replicate")
        dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
        dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
        x = torch.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(n)])
    if settings["flip"]:
        flip = torch.rand(n, generator=generator) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    if settings["rotate"]:
        angle = uniform(-settings["rotate"], settings["rotate"]) * math.pi / 180
        cos, sin, zero = angle.cos(), angle.sin(), torch.zeros(n)
        theta = torch.stack([torch.stack([cos, -sin * h / w, zero], 1), torch.stack([sin * w / h, cos, zero], 1)], 1)
        grid = torch.nn.functional.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
        x = torch.nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    if settings["color_jitter"]:
        j = settings["color_jitter"]
        brightness, contrast = uniform(1 - j, 1 + j)[:, None, None, None], uniform(1 - j, 1 + j)[:, None, None, None]
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = ((x - mean) * contrast + mean) * brightness
    return x


def augment_generator(seed: int, epoch: int, batch: int, rank: int) -> torch.Generator:
    """The draws for one batch on one process: fixed by (seed, epoch, batch, rank), so a resumed
    run augments exactly as an uninterrupted one."""
    return torch.Generator().manual_seed(((seed * 1_000_003 + epoch) * 1_000_003 + batch) * 131 + rank)


class Batches(torch.utils.data.Dataset):
    """Indexed by a whole batch of positions: one gather per batch, not one per example."""

    def __init__(self, xs: tuple, y: torch.Tensor):
        self.xs, self.y = xs, y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, idx: torch.Tensor) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
        return tuple(x[idx] for x in self.xs), self.y[idx]


class InProcessBatches:
    """Batches gathered in this process: iterating it is iterating the sampler."""

    def __init__(self, order, xs: tuple, y: torch.Tensor):
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
