"""Any folder of class subfolders of images, resized to a square size: `imagefolder:<size>[:gray]`.

Layouts under the data root (the folder itself):
- root/train/<class>/* and root/test/<class>/*: the given split;
- root/<class>/*: a fixed stratified split (seed 0), a fifth of every class (at least one image) to test.

Classes are the sorted subfolder names (hidden folders such as .bdb-cache are skipped). Images are
converted to RGB (or grey with `:gray`) and resized to size x size with Pillow's bilinear filter.
The normalisation is the training split's per-channel mean and std. Decoded once into the cache.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bdcore.data import ImageDataset, stratified_split
from bdcore.data.datasets.cache import cached
from bdcore.data.datasets.decode import IMAGE_SUFFIXES, decode_images
from bdcore.data.datasets.files import data_root, require_dir
from bdcore.errors import BdbError

TEST_FRACTION = 0.2
HOW = "put images in <root>/train/<class>/ and <root>/test/<class>/, or in <root>/<class>/, and pass --data-root <root>"


def parse_options(options: str) -> tuple[int, str]:
    """(size, Pillow mode) from the name's suffix: '<size>' or '<size>:gray'."""
    parts = options.split(":") if options else []
    try:
        size = int(parts[0])
    except (IndexError, ValueError):
        size = 0
    if not 4 <= size <= 1024 or len(parts) > 2 or (len(parts) == 2 and parts[1] not in ("gray", "rgb")):
        raise BdbError(f"imagefolder:{options}: name the image size, e.g. imagefolder:32 or imagefolder:28:gray (size 4-1024)")
    return size, "L" if parts[1:] == ["gray"] else "RGB"


def _classes(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _listing(folder: Path, classes: list[str]) -> tuple[list[Path], np.ndarray]:
    files, labels = [], []
    for i, c in enumerate(classes):
        imgs = _images(folder / c) if (folder / c).is_dir() else []
        files += imgs
        labels += [i] * len(imgs)
    return files, np.asarray(labels, dtype=np.int64)


def _channel_stats(x: np.ndarray, chunk: int = 4096) -> tuple[list[float], list[float]]:
    """Per-channel mean and std in [0, 1] units of uint8 (N, C, H, W) images, in chunks (bounded memory)."""
    s = np.zeros(x.shape[1])
    sq = np.zeros(x.shape[1])
    for i in range(0, len(x), chunk):
        part = x[i:i + chunk].astype(np.float64) / 255
        s += part.sum((0, 2, 3))
        sq += (part ** 2).sum((0, 2, 3))
    n = x.shape[0] * x.shape[2] * x.shape[3]
    mean = s / n
    std = np.sqrt(np.maximum(sq / n - mean ** 2, 0))
    return [float(m) for m in mean], [max(float(v), 1e-3) for v in std]


def load_imagefolder(options: str, root: str | None = None) -> ImageDataset:
    """An image-folder dataset; options is the part of the name after 'imagefolder:' ('<size>[:gray]')."""
    size, mode = parse_options(options)
    base = require_dir("imagefolder", data_root(root), HOW)
    split_given = (base / "train").is_dir() and (base / "test").is_dir()
    classes = _classes(base / "train" if split_given else base)
    if not classes:
        raise BdbError(f"imagefolder: {base} has no class subfolders; {HOW}")
    if split_given:
        extra = sorted(set(_classes(base / "test")) - set(classes))
        if extra:
            raise BdbError(f"imagefolder: {base / 'test'} has classes missing from train/: {', '.join(extra[:5])}")
        tr_files, ytr = _listing(base / "train", classes)
        te_files, yte = _listing(base / "test", classes)
    else:
        files, y = _listing(base, classes)
        counts = np.bincount(y, minlength=len(classes))
        if counts.min() < 2:
            raise BdbError(f"imagefolder: class {classes[int(counts.argmin())]!r} in {base} has under 2 images; "
                           "each class needs one for training and one for testing")
        # a fifth of the smallest class per class keeps the split stratified and balanced
        tr, te = stratified_split(y, max(1, int(counts.min() * TEST_FRACTION)), seed=0)
        tr_files, ytr, te_files, yte = [files[i] for i in tr], y[tr], [files[i] for i in te], y[te]
    if not tr_files or not te_files:
        raise BdbError(f"imagefolder: {base} has no {'training' if not tr_files else 'test'} images; {HOW}")

    def decode():
        xtr = decode_images(tr_files, size, mode, "imagefolder")
        xte = decode_images(te_files, size, mode, "imagefolder")
        mean, std = _channel_stats(xtr)
        return {"x_train": xtr, "y_train": ytr, "x_test": xte, "y_test": yte}, {"mean": mean, "std": std}

    t, meta, cache = cached(f"imagefolder-{size}{'-gray' if mode == 'L' else ''}", base, tr_files + te_files,
                            {"format": 1, "size": size, "mode": mode, "split_given": split_given}, decode)
    return ImageDataset(f"imagefolder:{options}", t["x_train"], t["y_train"], t["x_test"], t["y_test"], classes,
                        mean=tuple(meta["mean"]), std=tuple(meta["std"]), hflip=True,
                        info={"source": str(base), "cache": str(cache) if cache else None,
                              "split": "given" if split_given else f"stratified, seed 0, {TEST_FRACTION:.0%} of the smallest class"})
