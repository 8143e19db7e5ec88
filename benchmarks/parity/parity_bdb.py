"""bdb's side of the parity harness: the parity dataset, registered for this process only.

`mnist5k-parity` reads the raw MNIST idx files written by write_data.py (the same files the
reference reads) with bdcore's own idx reader, repeats the grey value into 3 channels (as the
reference launcher does) and normalises with the reference's MNIST normalisation (mean 0.5,
std 0.5 on every channel). Nothing is installed: `registry()` returns bdb's registry of installed
plugins plus this dataset.
"""

from __future__ import annotations

from bdcore.api.hookspecs import hookimpl
from bdcore.api.spec import DatasetSpec

DATASET = "mnist5k-parity"
MEAN = (0.5, 0.5, 0.5)
STD = (0.5, 0.5, 0.5)


def load_parity_mnist(root: str | None = None):
    """The parity split as a 3-channel ImageDataset (root: the data root given to write_data.py)."""
    from pathlib import Path

    from bdcore.data import ImageDataset
    from bdcore.data.datasets.mnist import load_mnist

    if root is None:
        raise ValueError(f"{DATASET} needs data_root: the folder write_data.py wrote")
    grey = load_mnist(str(Path(root) / "mnist"))
    rgb = lambda x: x.repeat(1, 3, 1, 1).contiguous()  # noqa: E731
    return ImageDataset(DATASET, rgb(grey.x_train), grey.y_train, rgb(grey.x_test), grey.y_test, grey.classes,
                        mean=MEAN, std=STD, hflip=False, info={"source": grey.info.get("source")})


class _Plugin:
    @hookimpl
    def bdb_register_datasets(self) -> list[DatasetSpec]:
        return [DatasetSpec(name=DATASET, summary="mnist5k parity split (first 400/last 100 per class), 3-channel",
                            factory="parity_bdb:load_parity_mnist", source="benchmarks/parity/write_data.py")]


_REG = None


def registry():
    """bdb's registry with the parity dataset added (loaded once)."""
    global _REG
    if _REG is None:
        from bdcore.api.registry import load_registry

        _REG = load_registry(extra_plugins=[("parity", _Plugin())])
    return _REG
