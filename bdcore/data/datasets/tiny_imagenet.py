"""Tiny-ImageNet-200 from the official tiny-imagenet-200.zip layout (64x64 RGB, 200 classes).

Under the data root (or its tiny-imagenet-200/ folder): wnids.txt (the class order, as the
reference benchmark uses it), train/<wnid>/images/<wnid>_<i>.JPEG, and val/images/*.JPEG with
val/val_annotations.txt (tab-separated file name and wnid). The labelled val split is the test
set; the unlabelled test/ folder is not used. Decoded once into the cache.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from bdcore.data import ImageDataset
from bdcore.data.datasets.cache import cached
from bdcore.data.datasets.decode import decode_images
from bdcore.data.datasets.files import locate, require, require_dir
from bdcore.errors import BdbError

SIZE = 64
HOW = "extract tiny-imagenet-200.zip (http://cs231n.stanford.edu/tiny-imagenet-200.zip) into --data-root"


def _natural(p: Path) -> tuple:
    m = re.search(r"(\d+)$", p.stem)
    return (p.stem[: m.start()] if m else p.stem, int(m.group(1)) if m else -1, p.name)


def load_tiny_imagenet(root: str | None = None) -> ImageDataset:
    """Tiny-ImageNet: 100,000 training / 10,000 validation (used as test) images, 64x64 RGB, 200 classes."""
    base = locate(root, "wnids.txt", ("tiny-imagenet-200",))
    wnids = [line.split()[0] for line in require("tiny-imagenet", base / "wnids.txt", HOW).read_text().splitlines()
             if line.strip()]
    if len(set(wnids)) != len(wnids) or not wnids:
        raise BdbError(f"tiny-imagenet: {base / 'wnids.txt'} is empty or repeats a wnid; replace it with the official file")
    index = {w: i for i, w in enumerate(wnids)}

    tr_files: list[Path] = []
    ytr: list[int] = []
    for w in wnids:
        d = require_dir("tiny-imagenet", base / "train" / w / "images", HOW)
        files = sorted((p for p in d.iterdir() if p.suffix.lower() in (".jpeg", ".jpg")), key=_natural)
        if not files:
            raise BdbError(f"tiny-imagenet: {d} holds no JPEG images; {HOW}")
        tr_files += files
        ytr += [index[w]] * len(files)

    ann = require("tiny-imagenet", base / "val" / "val_annotations.txt", HOW)
    te_files: list[Path] = []
    yte: list[int] = []
    for n, line in enumerate(ann.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) < 2 or parts[1] not in index:
            raise BdbError(f"tiny-imagenet: {ann} line {n} is not '<file>\\t<wnid from wnids.txt>...'; "
                           "replace it with the official file")
        te_files.append(require("tiny-imagenet", base / "val" / "images" / parts[0], f"it is listed in {ann}; {HOW}"))
        yte.append(index[parts[1]])
    if not te_files:
        raise BdbError(f"tiny-imagenet: {ann} lists no images; {HOW}")

    def decode():
        return {"x_train": decode_images(tr_files, None, "RGB", "tiny-imagenet", shape=(SIZE, SIZE)),
                "y_train": np.asarray(ytr, dtype=np.int64),
                "x_test": decode_images(te_files, None, "RGB", "tiny-imagenet", shape=(SIZE, SIZE)),
                "y_test": np.asarray(yte, dtype=np.int64)}, {}

    t, _, cache = cached("tiny-imagenet", base, [base / "wnids.txt", ann] + tr_files + te_files, {"format": 1}, decode)
    # the reference benchmark's Tiny-ImageNet normalisation
    return ImageDataset("tiny-imagenet", t["x_train"], t["y_train"], t["x_test"], t["y_test"], wnids,
                        mean=(0.4802, 0.4481, 0.3975), std=(0.2302, 0.2265, 0.2262), hflip=True,
                        info={"source": str(base), "cache": str(cache) if cache else None})
