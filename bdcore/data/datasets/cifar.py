"""CIFAR-10 and CIFAR-100 from the official *binary* versions, read without unpickling.

The binary files are already the uint8 arrays (one label byte or two, then 3,072 pixel bytes, R
then G then B planes of 32x32), so they are read directly with np.fromfile, not cached: the cache
would be a copy of the same bytes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from bdcore.data import ImageDataset
from bdcore.data.datasets.files import locate, require
from bdcore.errors import BdbError

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

PIXELS = 3 * 32 * 32

RECORDS: dict[str, int] = {
    **{f"data_batch_{i}.bin": 10000 for i in range(1, 6)}, "test_batch.bin": 10000,  # CIFAR-10
    "train.bin": 50000, "test.bin": 10000,  # CIFAR-100
}
"""Records in each official file: the size check (tests shrink these to build tiny files)."""


def _records(dataset: str, path: Path, label_bytes: int, label_at: int, how: str) -> tuple[np.ndarray, np.ndarray]:
    """(images (n, 3, 32, 32), labels) of a binary file of RECORDS[name] records of label_bytes + 3,072 bytes."""
    require(dataset, path, how)
    n = RECORDS[path.name]
    rec = label_bytes + PIXELS
    size = path.stat().st_size
    if size != n * rec:
        raise BdbError(f"{dataset}: {path} has {size} bytes, expected {n * rec} ({n} records of {rec}); "
                       "it is truncated or not the binary version: re-download it")
    raw = np.fromfile(path, dtype=np.uint8).reshape(n, rec)
    return raw[:, label_bytes:].reshape(n, 3, 32, 32).copy(), raw[:, label_at].astype(np.int64)


def _dataset(name: str, parts: list[tuple[np.ndarray, np.ndarray]], n_test_parts: int, classes: list[str],
             mean: tuple[float, ...], std: tuple[float, ...], base: Path) -> ImageDataset:
    train, test = parts[:-n_test_parts], parts[-n_test_parts:]
    xtr = torch.from_numpy(np.concatenate([p[0] for p in train]))
    ytr = torch.from_numpy(np.concatenate([p[1] for p in train]))
    xte = torch.from_numpy(np.concatenate([p[0] for p in test]))
    yte = torch.from_numpy(np.concatenate([p[1] for p in test]))
    for y in (ytr, yte):
        if len(y) and int(y.max()) >= len(classes):
            raise BdbError(f"{name}: labels up to {int(y.max())} in {base}, expected < {len(classes)}; "
                           "the files are corrupt or not this dataset's: re-download them")
    return ImageDataset(name, xtr, ytr, xte, yte, classes, mean=mean, std=std, hflip=True, info={"source": str(base)})


def load_cifar10(root: str | None = None) -> ImageDataset:
    """CIFAR-10 (50,000/10,000, 32x32 RGB) from cifar-10-binary.tar.gz, extracted.

    root: the directory holding data_batch_1.bin ... test_batch.bin, or its parent.
    """
    base = locate(root, "data_batch_1.bin", ("cifar-10-batches-bin",))
    how = ("extract cifar-10-binary.tar.gz (https://www.cs.toronto.edu/~kriz/cifar.html) "
           "and pass its folder (or its parent) as --data-root")
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    parts = [_records("cifar10", base / n, 1, 0, how) for n in names]
    return _dataset("cifar10", parts, 1, CIFAR10_CLASSES, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616), base)


def _cifar100_classes(base: Path) -> list[str]:
    names_file = base / "fine_label_names.txt"
    if names_file.is_file():
        names = [s.strip() for s in names_file.read_text().splitlines() if s.strip()]
        if len(names) == 100:
            return names
    return [str(i) for i in range(100)]


def load_cifar100(root: str | None = None) -> ImageDataset:
    """CIFAR-100 (50,000/10,000, 32x32 RGB, the 100 fine labels) from cifar-100-binary.tar.gz, extracted.

    Records are 3,074 bytes: coarse label, fine label, 3,072 pixels. root: the directory holding
    train.bin and test.bin, or its parent. Class names come from fine_label_names.txt when present.
    """
    base = locate(root, "train.bin", ("cifar-100-binary",))
    how = ("extract cifar-100-binary.tar.gz (https://www.cs.toronto.edu/~kriz/cifar.html) "
           "and pass its folder (or its parent) as --data-root")
    parts = [_records("cifar100", base / "train.bin", 2, 1, how),
             _records("cifar100", base / "test.bin", 2, 1, how)]
    # the reference benchmark's CIFAR-100 normalisation
    return _dataset("cifar100", parts, 1, _cifar100_classes(base), (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762), base)
