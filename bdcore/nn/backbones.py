"""The reference benchmark's torchvision backbones, built for a dataset's channels and size.

Built as the reference builds them: the torchvision architecture unchanged, with the classifier
sized to the dataset's classes and random initialisation (pretrained weights only from a local
file: `<model>@<path>`, see bdcore.nn.models.load_pretrained). Adaptations, all at the input:

- channels: a dataset with other than 3 channels gets the first convolution rebuilt for its
  channel count (same kernel, stride and padding);
- size: ViT-B/16 resizes every input to 224x224 (bilinear), as the reference does; the other
  backbones keep the ImageNet stems (ResNets: 7x7 stride-2 conv and max-pool, as in the reference)
  and resize inputs smaller than 32x32 up to 32x32, because VGG, DenseNet and ConvNeXt downsample
  by 32 and would reach zero size on 28x28 MNIST.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

MIN_SIZE = 32
VIT_SIZE = 224


class ResizeInput(nn.Module):
    """Bilinear resize of every input to size x size (a no-op when it already is)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] == (self.size, self.size):
            return x
        return F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)

    def extra_repr(self) -> str:
        return f"size={self.size}"


def _set_first_conv(net: nn.Module, in_channels: int) -> None:
    """Rebuild the first Conv2d (registration order) for in_channels inputs."""
    name, conv = next((n, m) for n, m in net.named_modules() if isinstance(m, nn.Conv2d))
    if conv.in_channels == in_channels:
        return
    new = nn.Conv2d(in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                    conv.dilation, 1, conv.bias is not None,
                    conv.padding_mode)
    parent = net.get_submodule(name.rsplit(".", 1)[0]) if "." in name else net
    setattr(parent, name.rsplit(".", 1)[-1], new)


def build(arch: str, num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    """torchvision's `arch` (random init) for num_classes, in_channels and image_size inputs."""
    import torchvision

    if arch.startswith("vit_"):
        net = torchvision.models.get_model(arch, weights=None, num_classes=num_classes, image_size=VIT_SIZE)
        size = VIT_SIZE
    else:
        net = torchvision.models.get_model(arch, weights=None, num_classes=num_classes)
        size = max(image_size, MIN_SIZE)
    _set_first_conv(net, in_channels)
    if size == image_size:
        return net
    return nn.Sequential(OrderedDict(resize=ResizeInput(size), body=net))


def _reference(arch: str, title: str) -> Callable[..., nn.Module]:
    def factory(num_classes: int = 10, in_channels: int = 3, image_size: int = 32) -> nn.Module:
        return build(arch, num_classes, in_channels, image_size)

    factory.__name__ = factory.__qualname__ = arch
    factory.__doc__ = f"{title} (torchvision {arch}) for the dataset's classes, channels and size."
    return factory


resnet18 = _reference("resnet18", "ResNet-18")
resnet34 = _reference("resnet34", "ResNet-34")
resnet50 = _reference("resnet50", "ResNet-50")
vgg19_bn = _reference("vgg19_bn", "VGG-19 with batch norm")
densenet161 = _reference("densenet161", "DenseNet-161")
efficientnet_b3 = _reference("efficientnet_b3", "EfficientNet-B3")
mobilenet_v3_large = _reference("mobilenet_v3_large", "MobileNetV3-Large")
convnext_tiny = _reference("convnext_tiny", "ConvNeXt-Tiny")
vit_b_16 = _reference("vit_b_16", "ViT-B/16, inputs resized to 224x224")

REFERENCE_MODELS: dict[str, str] = {
    "resnet18": "resnet18", "resnet34": "resnet34", "resnet50": "resnet50", "vgg19-bn": "vgg19_bn",
    "densenet161": "densenet161", "efficientnet-b3": "efficientnet_b3",
    "mobilenet-v3-large": "mobilenet_v3_large", "convnext-tiny": "convnext_tiny", "vit-b-16": "vit_b_16",
}
"""bdb model name -> torchvision architecture (and the attribute of this module that builds it)."""
