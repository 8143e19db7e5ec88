"""Per-dataset load time from the decoded cache and per-model size and CPU speed (issue 13).

    python benchmarks/datasets_models.py datasets   # full-size synthetic caches: write once, time the load
    python benchmarks/datasets_models.py models     # parameters, forward+backward img/s per dataset shape
    python benchmarks/datasets_models.py            # both

The real archives cannot be fetched here, so the dataset figures load a cache file of each
dataset's full size (same shape, dtype and layout as the loaders write) through the cache's own
reader: the time a real run spends loading after its first, decoding, load. Nothing else may run
while timing.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

FULL = {  # name: (train n, test n, C, H, classes)
    "mnist": (60_000, 10_000, 1, 28, 10),
    "cifar10": (50_000, 10_000, 3, 32, 10),
    "cifar100": (50_000, 10_000, 3, 32, 100),
    "gtsrb": (39_209, 12_630, 3, 32, 43),
    "tiny-imagenet": (100_000, 10_000, 3, 64, 200),
}
MODELS = ["small-cnn", "preact-resnet18", "resnet18", "resnet34", "resnet50", "vgg19-bn", "densenet161",
          "efficientnet-b3", "mobilenet-v3-large", "convnext-tiny", "vit-b-16"]


def datasets() -> None:
    from bdcore.data.datasets.cache import cached

    rng = np.random.default_rng(0)
    for name, (ntr, nte, c, h, k) in FULL.items():
        with tempfile.TemporaryDirectory() as d:
            base = Path(d)
            src = base / "source.bin"
            src.write_bytes(b"x")

            def decode():
                return ({"x_train": rng.integers(0, 256, (ntr, c, h, h), dtype=np.uint8),
                         "y_train": rng.integers(0, k, ntr), "x_test": rng.integers(0, 256, (nte, c, h, h), dtype=np.uint8),
                         "y_test": rng.integers(0, k, nte)}, {"classes": [str(i) for i in range(k)]})

            cached(name, base, [src], {"v": 1}, decode)  # writes the cache
            times, full = [], []
            for _ in range(3):
                t = time.perf_counter()
                arrays, _, path = cached(name, base, [src], {"v": 1}, decode)
                times.append(time.perf_counter() - t)
                # the open is lazy (memory-mapped): also time reading every byte into torch tensors, as a run does
                tensors = {k: torch.from_numpy(np.array(v)) for k, v in arrays.items()}
                full.append(time.perf_counter() - t)
                del tensors
            size = path.stat().st_size / 2**20
            print(f"{name:14s} {ntr + nte:7d} images {c}x{h}x{h}: cache {size:7.1f} MiB, open {min(times):.3f} s, "
                  f"open + read into tensors {min(full):.2f} s (warm page cache)", flush=True)


def _speed(net: torch.nn.Module, c: int, h: int, batch: int, steps: int) -> float:
    x = torch.rand(batch, c, h, h)
    y = torch.randint(0, 10, (batch,))
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    net.train()
    for i in range(steps + 1):
        if i == 1:
            t = time.perf_counter()
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    return batch * steps / (time.perf_counter() - t)


def models(names: list[str] | None = None) -> None:
    from bdcore.api.resolve import new_model

    shapes = {"mnist": (1, 28, 10), "cifar10": (3, 32, 10), "tiny-imagenet": (3, 64, 200)}
    print(f"threads {torch.get_num_threads()}; forward+backward+SGD step, batch 32, img/s")
    for m in names or MODELS:
        cells = []
        params = None
        for ds, (c, h, k) in shapes.items():
            net = new_model(m, k, (c, h, h), (0.5,) * c, (0.25,) * c)
            if ds == "cifar10":
                params = sum(p.numel() for p in net.parameters())
            steps = 1 if m in ("vit-b-16", "densenet161") else 3
            cells.append(f"{ds} {_speed(net, c, h, 32, steps):7.1f}")
        print(f"{m:20s} {params / 1e6:7.2f} M params (10 classes) | " + " | ".join(cells), flush=True)


if __name__ == "__main__":
    which = sys.argv[1:] or ["datasets", "models"]
    if "datasets" in which:
        datasets()
    if "models" in which:
        models([a for a in which if a not in ("datasets", "models")] or None)
