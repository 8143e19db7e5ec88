"""MNIST from the official idx files (train-images-idx3-ubyte etc., gzipped or not)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from bdcore.data import ImageDataset
from bdcore.data.datasets.cache import cached
from bdcore.data.datasets.files import MissingData, data_root, read_maybe_gzip
from bdcore.errors import BdbError

IMAGES_MAGIC = 0x00000803  # unsigned byte, 3 dimensions
LABELS_MAGIC = 0x00000801  # unsigned byte, 1 dimension
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
HOW = ("download it from https://yann.lecun.com/exdb/mnist/ (or a mirror such as "
       "https://ossci-datasets.s3.amazonaws.com/mnist/) and put it, gzipped or not, in --data-root")


def _find(base: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        if (base / name).is_file():
            return base / name
    raise MissingData("mnist", f"mnist: missing {base / stem}(.gz); {HOW}")


def _header(path: Path, raw: bytes, magic: int, dims: int) -> tuple[int, ...]:
    if len(raw) < 4 + 4 * dims:
        raise BdbError(f"mnist: {path} is truncated ({len(raw)} bytes, shorter than its header); re-download it")
    head = np.frombuffer(raw[: 4 + 4 * dims], dtype=">u4")
    if int(head[0]) != magic:
        raise BdbError(f"mnist: {path} has magic number {int(head[0]):#010x}, expected {magic:#010x}; "
                       "it is not an idx file of this kind (swapped images and labels?): re-download it")
    shape = tuple(int(v) for v in head[1:])
    want = 4 + 4 * dims + int(np.prod(shape))
    if len(raw) != want:
        raise BdbError(f"mnist: {path} has {len(raw)} bytes, its header says {want}; it is truncated or corrupt: re-download it")
    return shape


def _split(base: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    ipath, lpath = (_find(base, s) for s in FILES[split])
    iraw, lraw = read_maybe_gzip("mnist", ipath), read_maybe_gzip("mnist", lpath)
    n, h, w = _header(ipath, iraw, IMAGES_MAGIC, 3)
    (m,) = _header(lpath, lraw, LABELS_MAGIC, 1)
    if (h, w) != (28, 28):
        raise BdbError(f"mnist: {ipath} holds {h}x{w} images, expected 28x28; it is not MNIST")
    if n != m:
        raise BdbError(f"mnist: {ipath} has {n} images but {lpath} has {m} labels; re-download both")
    x = np.frombuffer(iraw, dtype=np.uint8, offset=16).reshape(n, 1, 28, 28).copy()
    y = np.frombuffer(lraw, dtype=np.uint8, offset=8).astype(np.int64)
    if n and int(y.max()) > 9:
        raise BdbError(f"mnist: {lpath} has label {int(y.max())}, expected 0-9; it is corrupt: re-download it")
    return x, y


def load_mnist(root: str | None = None) -> ImageDataset:
    """MNIST (60,000/10,000, 28x28 grey) from the four official idx files in root (or root/MNIST/raw).

    Magic numbers, dimensions and byte counts are checked; gzipped files are decoded once into the cache.
    """
    base = data_root(root)
    for sub in ("MNIST/raw", "mnist", "MNIST"):
        if any((base / sub).glob("train-images*")):
            base = base / sub
            break

    def decode():
        (xtr, ytr), (xte, yte) = _split(base, "train"), _split(base, "test")
        return {"x_train": xtr, "y_train": ytr, "x_test": xte, "y_test": yte}, {}

    paths = [_find(base, s) for pair in FILES.values() for s in pair]
    if any(p.suffix == ".gz" for p in paths):
        t, _, cache = cached("mnist", base, paths, {"format": 1}, decode)
    else:
        t, cache = {k: torch.from_numpy(v) for k, v in decode()[0].items()}, None
    # the reference benchmark normalises MNIST with mean 0.5, std 0.5
    return ImageDataset("mnist", t["x_train"], t["y_train"], t["x_test"], t["y_test"], [str(i) for i in range(10)],
                        mean=(0.5,), std=(0.5,), hflip=False,
                        info={"source": str(base), "cache": str(cache) if cache else None})
