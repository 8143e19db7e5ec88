"""GTSRB (German Traffic Sign Recognition Benchmark) from the official final training and test sets.

Layout under the data root (as the official zips extract, inside a GTSRB/ folder or not):
Final_Training/Images/<00000..00042>/*.ppm with GT-<class>.csv in each class folder, and
Final_Test/Images/*.ppm with the ground truth GT-final_test.csv (from GTSRB_Final_Test_GT.zip) in
Final_Test/Images/ or the data root. Whole images are resized to 32x32 with Pillow's bilinear
filter, as the reference benchmark does (no ROI crop); each image's size is checked against its
CSV row. Decoded once into the cache.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from bdcore.data import ImageDataset
from bdcore.data.datasets.cache import cached
from bdcore.data.datasets.decode import decode_images
from bdcore.data.datasets.files import locate, require, require_dir
from bdcore.errors import BdbError

NUM_CLASSES = 43
SIZE = 32
URL = "https://benchmark.ini.rub.de/gtsrb_dataset.html"
TRAIN_HOW = f"extract GTSRB_Final_Training_Images.zip ({URL}) into --data-root"
TEST_HOW = f"extract GTSRB_Final_Test_Images.zip and GTSRB_Final_Test_GT.zip ({URL}) into --data-root"


def _rows(path: Path) -> list[tuple[str, int, int, int]]:
    """(file name, width, height, class id) of every row of a GTSRB ground-truth CSV."""
    try:
        with open(path, newline="") as fh:
            reader = csv.DictReader(fh, delimiter=";")
            fields = set(reader.fieldnames or ())
            if not {"Filename", "Width", "Height", "ClassId"} <= fields:
                raise BdbError(f"gtsrb: {path} lacks the Filename;Width;Height;...;ClassId header"
                               + ("; GT-final_test.test.csv has no labels, use GT-final_test.csv from GTSRB_Final_Test_GT.zip"
                                  if "Filename" in fields else "; replace it with the official file"))
            return [(r["Filename"], int(r["Width"]), int(r["Height"]), int(r["ClassId"])) for r in reader]
    except (ValueError, TypeError, UnicodeDecodeError, csv.Error) as exc:
        raise BdbError(f"gtsrb: {path} has a malformed row ({exc}); replace it with the official file") from None


def _split(csvs: list[tuple[Path, Path]]) -> tuple[list[Path], list[tuple[int, int]], np.ndarray]:
    """Files, (width, height)s and labels listed by (csv, image folder) pairs."""
    files, sizes, labels = [], [], []
    for c, folder in csvs:
        for name, w, h, cls in _rows(c):
            if not 0 <= cls < NUM_CLASSES:
                raise BdbError(f"gtsrb: {c} gives {name} class {cls}, expected 0-{NUM_CLASSES - 1}; replace it with the official file")
            files.append(require("gtsrb", folder / name, f"it is listed in {c}; re-extract the official zip"))
            sizes.append((w, h))
            labels.append(cls)
    return files, sizes, np.asarray(labels, dtype=np.int64)


def load_gtsrb(root: str | None = None) -> ImageDataset:
    """GTSRB: 39,209 training / 12,630 test traffic-sign images of 43 classes, resized to 32x32 RGB."""
    base = locate(root, "Final_Training", ("GTSRB",))
    train_dir = require_dir("gtsrb", base / "Final_Training" / "Images", TRAIN_HOW)
    train_csvs = []
    for c in range(NUM_CLASSES):
        d = require_dir("gtsrb", train_dir / f"{c:05d}", TRAIN_HOW)
        train_csvs.append(require("gtsrb", d / f"GT-{c:05d}.csv", TRAIN_HOW))
    test_dir = require_dir("gtsrb", base / "Final_Test" / "Images", TEST_HOW)
    test_csv = test_dir / "GT-final_test.csv"
    if not test_csv.is_file() and (base / "GT-final_test.csv").is_file():
        test_csv = base / "GT-final_test.csv"
    require("gtsrb", test_csv, f"put GT-final_test.csv from GTSRB_Final_Test_GT.zip ({URL}) in {test_dir}")

    tr_files, tr_sizes, ytr = _split([(c, c.parent) for c in train_csvs])
    te_files, te_sizes, yte = _split([(test_csv, test_dir)])
    if not len(ytr) or not len(yte):
        raise BdbError(f"gtsrb: {train_dir if not len(ytr) else test_csv} lists no images; re-extract the official zips")

    def decode():
        return {"x_train": decode_images(tr_files, SIZE, "RGB", "gtsrb", tr_sizes), "y_train": ytr,
                "x_test": decode_images(te_files, SIZE, "RGB", "gtsrb", te_sizes), "y_test": yte}, {}

    t, _, cache = cached("gtsrb", base, train_csvs + [test_csv] + tr_files + te_files, {"format": 1, "size": SIZE}, decode)
    # the reference benchmark feeds GTSRB unnormalised (mean 0, std 1); traffic signs are not flipped
    return ImageDataset("gtsrb", t["x_train"], t["y_train"], t["x_test"], t["y_test"], [str(i) for i in range(NUM_CLASSES)],
                        mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), hflip=False,
                        info={"source": str(base), "cache": str(cache) if cache else None})
