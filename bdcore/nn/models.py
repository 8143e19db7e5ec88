"""Built-in models and the wrapper that puts input normalisation inside every model.

Every model bdb trains takes float images in [0, 1]; `Normalize` is its first module, so attacks
and defenses (trigger synthesis, blending, masks) all work in image space.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from bdcore.errors import BdbError, require


class Normalize(nn.Module):
    """(x - mean) / std per channel, with mean/std as buffers (saved with the weights)."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def with_normalization(net: nn.Module, mean: Sequence[float], std: Sequence[float]) -> nn.Sequential:
    """A model taking [0, 1] images: Normalize, then the backbone (named 'net')."""
    return nn.Sequential(OrderedDict(normalize=Normalize(mean, std), net=net))


class SmallCNN(nn.Module):
    """Three conv-BN-ReLU blocks and a linear head: the fast model for tests and the demo."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, image_size: int = 28, width: int = 32) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True),
            nn.MaxPool2d(2) if image_size >= 16 else nn.Identity(),
            nn.Conv2d(w, 2 * w, 3, padding=1, bias=False), nn.BatchNorm2d(2 * w), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(2 * w, 4 * w, 3, padding=1, bias=False), nn.BatchNorm2d(4 * w), nn.ReLU(inplace=True),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4 * w, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


class PreActBlock(nn.Module):
    """Pre-activation basic block (He et al., 2016)."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.shortcut = None
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(x))
        shortcut = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + shortcut


class PreActResNet18(nn.Module):
    """PreAct-ResNet18 for small images (3x3 stem, no max-pool), as in the CIFAR recipes."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3, image_size: int = 32) -> None:
        super().__init__()
        self.in_planes = 64
        self.conv1 = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
        self.layer1 = self._layer(64, 2, 1)
        self.layer2 = self._layer(128, 2, 2)
        self.layer3 = self._layer(256, 2, 2)
        self.layer4 = self._layer(512, 2, 2)
        self.bn = nn.BatchNorm2d(512)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(512, num_classes)

    def _layer(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        layers = []
        for s in [stride] + [1] * (blocks - 1):
            layers.append(PreActBlock(self.in_planes, planes, s))
            self.in_planes = planes
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(x)
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        out = F.relu(self.bn(out))
        return self.linear(torch.flatten(self.avgpool(out), 1))


class _RepeatChannels(nn.Module):
    """Feeds one-channel images to a three-channel backbone."""

    def __init__(self, times: int) -> None:
        super().__init__()
        self.times = times

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.repeat(1, self.times, 1, 1)


def build_timm(name: str, num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    """Any timm architecture by name, randomly initialised (no weight download)."""
    timm = require("timm", "timm", f"model timm:{name}")
    if not timm.is_model(name):
        raise BdbError(f"timm has no model {name!r}; see timm.list_models()")
    return timm.create_model(name, pretrained=False, num_classes=num_classes, in_chans=in_channels)


def build_torchvision(name: str, num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    """Any torchvision classification model by name, randomly initialised (no weight download)."""
    import torchvision

    try:
        net = torchvision.models.get_model(name, weights=None, num_classes=num_classes)
    except ValueError:
        raise BdbError(f"torchvision has no model {name!r}; see torchvision.models.list_models()") from None
    if in_channels != 3:
        net = nn.Sequential(_RepeatChannels(3 // in_channels if 3 % in_channels == 0 else 3), net)
    return net


def _read_state_dict(path: str) -> dict[str, torch.Tensor]:
    from pathlib import Path

    p = Path(path).expanduser()
    if not p.is_file():
        raise BdbError(f"weights file {p} not found; put the pretrained weights there (nothing is downloaded)")
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(p))
        else:
            # torch's weights_only loader: tensors and plain containers, no arbitrary objects
            state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any reader failure is a bad file
        raise BdbError(f"weights file {p} is not a readable state dict ({type(exc).__name__}: {exc})") from None
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise BdbError(f"weights file {p} does not hold a state dict of tensors")
    return state


def _prefixes(keys: list[str]) -> set[str]:
    out = {""}
    for k in keys:
        parts = k.split(".")
        out.update(".".join(parts[:i]) + "." for i in (1, 2) if len(parts) > i)
    return out


def _best_prefixes(source: list[str], target: list[str]) -> tuple[str, str]:
    """(source prefix, target prefix) whose swap makes the most source names target names."""
    tset = set(target)
    best, score = ("", ""), -1
    for ps in _prefixes(source):
        keys = [k[len(ps):] for k in source if k.startswith(ps)]
        for pt in _prefixes(target):
            n = sum(pt + k in tset for k in keys)
            if n > score:
                best, score = (ps, pt), n
    return best


def load_pretrained(net: nn.Module, path: str) -> dict[str, list[str]]:
    """Load every tensor of a local weights file whose name and shape match a tensor of net.

    Names match after swapping one leading prefix for another, the pair that matches most tensors
    (so a torchvision state dict fits a wrapped torchvision model, and a saved bdb model its backbone).
    A three-channel first convolution is summed over colours for a one-channel model. Tensors
    that do not fit (e.g. a classifier for another number of classes) are skipped and listed.
    Returns {'loaded': [...], 'skipped': [...]}; loading nothing is an error.
    """
    state = _read_state_dict(path)
    target = net.state_dict()
    ps, pt = _best_prefixes(list(state), list(target))
    loaded, skipped, new = [], [], {}
    for key, value in state.items():
        match = pt + key[len(ps):] if key.startswith(ps) else None
        if match not in target:
            skipped.append(key)
            continue
        want = target[match]
        if value.shape != want.shape and value.dim() == 4 and want.dim() == 4 and want.shape[1] == 1 \
                and value.shape[0] == want.shape[0] and value.shape[2:] == want.shape[2:]:
            value = value.sum(1, keepdim=True)
        if value.shape != want.shape:
            skipped.append(key)
            continue
        new[match] = value.to(want.dtype)
        loaded.append(match)
    if not loaded:
        raise BdbError(f"weights file {path}: no tensor matches {type(net).__name__} by name and shape")
    net.load_state_dict(new, strict=False)
    return {"loaded": loaded, "skipped": skipped}
