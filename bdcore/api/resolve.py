"""Registry names to objects: a registered dataset, loaded once per process, and a registered model.

`load_dataset`, `build_model` and `new_model` are public (`from bdcore import build_model`).
"""

from __future__ import annotations

import torch
from torch import nn

from bdcore.api.registry import Registry, registry
from bdcore.data import ImageDataset
from bdcore.data.datasets.download import download_hint
from bdcore.data.datasets.files import MissingData
from bdcore.errors import BdbError
from bdcore.nn.models import load_pretrained, with_normalization

_DATA_CACHE: dict[tuple[str, str | None], ImageDataset] = {}


def load_dataset(name: str, root: str | None = None, reg: Registry | None = None) -> ImageDataset:
    """A registered dataset, loaded once per process."""
    reg = reg or registry()
    key = (name, root)
    if key not in _DATA_CACHE:
        spec = reg.get("dataset", name)
        try:
            if spec.name.endswith(":"):  # a family: factory(options after the prefix, root)
                data = spec.load()(name[len(spec.name):], root)
            else:
                data = spec.load()(root)
        except MissingData as exc:
            raise BdbError(f"{exc}{download_hint(exc.dataset, root)}") from None
        if not isinstance(data, ImageDataset):
            raise BdbError(f"dataset {name!r} from {spec.package} did not return an ImageDataset")
        _DATA_CACHE[key] = data
    return _DATA_CACHE[key]


def build_model(name: str, data: ImageDataset, reg: Registry | None = None) -> nn.Module:
    """A registered model for the dataset's shape and classes, taking [0, 1] images."""
    return new_model(name, data.num_classes, data.shape, data.mean, data.std, reg=reg)


def new_model(name: str, num_classes: int, shape: tuple[int, int, int], mean: tuple[float, ...],
              std: tuple[float, ...], device: torch.device | None = None, reg: Registry | None = None) -> nn.Module:
    """A freshly initialised registered model for images of `shape` in [0, 1] (normalised inside).

    `<model>@<path>` starts from the local weights file at path (safetensors, or a torch state dict
    read with weights_only): every tensor whose name and shape match is loaded (see load_pretrained).
    """
    reg = reg or registry()
    spec = reg.get("model", name)
    factory = spec.load()
    name, _, weights = name.partition("@")
    c, h, _ = shape
    if spec.name.endswith(":"):
        net = factory(name[len(spec.name):], num_classes, c, h)
    else:
        net = factory(num_classes=num_classes, in_channels=c, image_size=h)
    if weights:
        load_pretrained(net, weights)
    net = with_normalization(net, mean, std)
    return net.to(device) if device is not None else net
