"""Backbone-agnostic model surgery for defenses: find layers, tap features, mask or prune channels.

Everything works by traversing `named_modules()` and registering hooks, so a defense written once
works on small-cnn, PreAct-ResNet18 and timm/torchvision models without per-architecture copies.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Sequence

import torch
from torch import nn

from bdcore.errors import BdbError

BN_TYPES = (nn.BatchNorm2d,)
CONV_TYPES = (nn.Conv2d,)


def named_layers(model: nn.Module, types: type | tuple[type, ...]) -> list[tuple[str, nn.Module]]:
    """(name, module) of every submodule of the given type(s), in registration order."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, types)]


def batchnorms(model: nn.Module) -> list[tuple[str, nn.BatchNorm2d]]:
    """Every BatchNorm2d layer."""
    return named_layers(model, BN_TYPES)


def convs(model: nn.Module) -> list[tuple[str, nn.Conv2d]]:
    """Every Conv2d layer."""
    return named_layers(model, CONV_TYPES)


def last_conv(model: nn.Module) -> tuple[str, nn.Conv2d]:
    """The last Conv2d in registration order (Fine-Pruning's target layer)."""
    layers = convs(model)
    if not layers:
        raise BdbError(f"{type(model).__name__} has no Conv2d layer")
    return layers[-1]


def classifier(model: nn.Module) -> tuple[str, nn.Linear]:
    """The last Linear layer (the classification head)."""
    layers = named_layers(model, nn.Linear)
    if not layers:
        raise BdbError(f"{type(model).__name__} has no Linear layer")
    return layers[-1]


def conv_bn_pairs(model: nn.Module) -> list[tuple[str, nn.Conv2d, str, nn.BatchNorm2d]]:
    """Conv2d layers directly followed (in registration order) by a BatchNorm2d of matching width.

    This covers conv-BN-ReLU backbones (small-cnn, ResNet, VGG); in pre-activation blocks it pairs
    a block's first conv with the BN that normalises its output.
    """
    mods = [(n, m) for n, m in model.named_modules() if isinstance(m, CONV_TYPES + BN_TYPES)]
    pairs = []
    for (n1, m1), (n2, m2) in zip(mods, mods[1:]):
        if isinstance(m1, CONV_TYPES) and isinstance(m2, BN_TYPES) and m1.out_channels == m2.num_features:
            pairs.append((n1, m1, n2, m2))
    return pairs


class FeatureTap:
    """Records the output (or input) of a module on every forward pass while attached."""

    def __init__(self, module: nn.Module, use_input: bool = False, detach: bool = True) -> None:
        self.module, self.use_input, self.detach = module, use_input, detach
        self.value: torch.Tensor | None = None
        self._handle = None

    def _hook(self, mod: nn.Module, inp: tuple, out: torch.Tensor) -> None:
        v = inp[0] if self.use_input else out
        self.value = v.detach() if self.detach else v

    def __enter__(self) -> "FeatureTap":
        self._handle = self.module.register_forward_hook(self._hook)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None


@torch.no_grad()
def collect_features(model: nn.Module, module: nn.Module, batches, use_input: bool = False) -> torch.Tensor:
    """Concatenated outputs (or inputs) of `module` over batches of images (iterable of x or (x, y))."""
    model.eval()
    feats = []
    with FeatureTap(module, use_input=use_input) as tap:
        for b in batches:
            x = b[0] if isinstance(b, (tuple, list)) else b
            model(x)
            feats.append(tap.value.flatten(1) if tap.value.dim() > 2 and use_input else tap.value)
    return torch.cat(feats)


def penultimate(model: nn.Module, batches) -> torch.Tensor:
    """Inputs of the classification head (penultimate-layer activations) over batches."""
    return collect_features(model, classifier(model)[1], batches, use_input=True)


def class_features(model: nn.Module, data, batch_size: int = 256) -> list[tuple[int, torch.Tensor, torch.Tensor]]:
    """Penultimate activations grouped by label, for per-class detectors (AC, Spectral, SPECTRE).

    `data` is a TrainSet; returns, for every class present in its labels in class order, (class,
    indices into `data` (CPU, long), features of those samples (n_k, d), float64 on the CPU).
    """
    feats = penultimate(model, data.iter_batches(batch_size)).double().cpu()
    labels = data.y.cpu()
    out = []
    for k in torch.unique(labels).tolist():
        idx = torch.nonzero(labels == k).flatten()
        out.append((int(k), idx, feats[idx]))
    return out


class ChannelMask(nn.Module):
    """Learnable per-channel multipliers on the outputs of chosen layers (default: every BN2d).

    Attach with `with mask.attached(model):`; masks live in `mask.masks[name]`, shape (C,), and
    multiply the layer output channel-wise. Used by mask-learning defenses (ANP, RNP, AWM-style).

    bn_scale: mask a BatchNorm layer's scale gamma only and keep its shift beta, i.e. output
    m * out + (1 - m) * beta (every layer must then be a BN): a mask of 0 is then exactly the
    pruning of `zero_bn_scale`, as ANP and RNP prune.
    """

    def __init__(self, model: nn.Module, layers: Sequence[tuple[str, nn.Module]] | None = None, init: float = 1.0,
                 bn_scale: bool = False) -> None:
        super().__init__()
        self.layers = list(layers) if layers is not None else batchnorms(model)
        self.bn_scale = bn_scale
        if bn_scale and not all(isinstance(m, BN_TYPES) and m.affine for _, m in self.layers):
            raise BdbError("ChannelMask(bn_scale=True) masks affine BatchNorm2d layers only")
        if not self.layers:
            raise BdbError(f"{type(model).__name__} has no BatchNorm2d layer to mask")
        device = next(model.parameters()).device
        self.masks = nn.ParameterDict({
            n.replace(".", "__"): nn.Parameter(torch.full((self._width(m),), float(init), device=device))
            for n, m in self.layers
        })

    @staticmethod
    def _width(m: nn.Module) -> int:
        for attr in ("num_features", "out_channels"):
            if hasattr(m, attr):
                return int(getattr(m, attr))
        raise BdbError(f"cannot mask {type(m).__name__}: unknown channel count")

    def mask_of(self, name: str) -> nn.Parameter:
        return self.masks[name.replace(".", "__")]

    @contextmanager
    def attached(self, model: nn.Module) -> Iterator["ChannelMask"]:
        handles = []
        for n, m in self.layers:
            p = self.mask_of(n)
            if self.bn_scale:
                hook = (lambda mod, inp, out, p=p: out * p.view(1, -1, 1, 1).to(out.dtype)
                        + ((1 - p) * mod.bias).view(1, -1, 1, 1).to(out.dtype))
            else:
                hook = (lambda mod, inp, out, p=p: out * p.view(1, -1, 1, 1).to(out.dtype))
            handles.append(m.register_forward_hook(hook))
        try:
            yield self
        finally:
            for h in handles:
                h.remove()


def zero_channels(layer: nn.Module, channels: torch.Tensor | Sequence[int]) -> None:
    """Prune output channels for good: zero their weights and bias (for BN: its scale and shift)."""
    idx = torch.as_tensor(list(channels) if not isinstance(channels, torch.Tensor) else channels, dtype=torch.long)
    if idx.numel() == 0:
        return
    with torch.no_grad():
        if isinstance(layer, BN_TYPES):
            layer.weight[idx] = 0
            layer.bias[idx] = 0
        elif isinstance(layer, CONV_TYPES + (nn.Linear,)):
            layer.weight[idx] = 0
            if layer.bias is not None:
                layer.bias[idx] = 0
        else:
            raise BdbError(f"cannot prune channels of {type(layer).__name__}")


def get_module(model: nn.Module, name: str) -> nn.Module:
    """A submodule by its dotted name."""
    try:
        return model.get_submodule(name)
    except AttributeError:
        raise BdbError(f"model has no layer {name!r}") from None


@torch.no_grad()
def bn_inputs(model: nn.Module, batches, reduce, layers: Sequence[tuple[str, nn.Module]] | None = None) -> dict[str, torch.Tensor]:
    """Per BatchNorm layer: `reduce(input)` of every batch, concatenated along dim 0.

    The input of a BN layer is the pre-activation it normalises (shape (B, C, H, W)); `reduce` maps
    it to a tensor whose first dimension is the batch, e.g. `lambda x: x.flatten(2).amax(2)` for
    per-sample channel maxima. `batches` is an iterable of x or (x, y); the model runs in eval mode.
    Used by pre-activation-distribution defenses (EP, BNP).
    """
    model.eval()
    layers = list(layers) if layers is not None else batchnorms(model)
    out: dict[str, list[torch.Tensor]] = {n: [] for n, _ in layers}
    handles = [m.register_forward_hook(lambda mod, inp, o, n=n: out[n].append(reduce(inp[0].detach())))
               for n, m in layers]
    try:
        for b in batches:
            model(b[0] if isinstance(b, (tuple, list)) else b)
    finally:
        for h in handles:
            h.remove()
    return {n: torch.cat(v) for n, v in out.items() if v}


@torch.no_grad()
def recalibrate_bn(model: nn.Module, data, batch_size: int = 256) -> nn.Module:
    """Re-estimate every BatchNorm's running statistics as the plain average over one pass of `data`'s
    images (a TrainSet; no augmentation, no gradient, weights unchanged). Returns the model in eval mode.

    For models whose statistics no longer match the clean images they are scored on: a point on a
    mode-connectivity curve (MCR), a model trained only on mixed-up images (DBD's MixMatch)."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if bns:
        saved = [m.momentum for m in bns]
        for m in bns:
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the pass
        model.train()
        for x, _ in data.iter_batches(batch_size):
            model(x)
        for m, mom in zip(bns, saved):
            m.momentum = mom
    return model.eval()


def zero_bn_scale(layer: nn.Module, channels: torch.Tensor | Sequence[int]) -> None:
    """Prune BN neurons as ANP/EP/BNP do: zero their scale (gamma), keep their shift (beta)."""
    if not isinstance(layer, BN_TYPES):
        raise BdbError(f"zero_bn_scale expects a BatchNorm2d, got {type(layer).__name__}")
    idx = torch.as_tensor(list(channels) if not isinstance(channels, torch.Tensor) else channels, dtype=torch.long)
    if idx.numel():
        with torch.no_grad():
            layer.weight[idx.to(layer.weight.device)] = 0


@torch.no_grad()
def forward_trace(model: nn.Module, example: torch.Tensor, leaves_only: bool = False) -> list[tuple[str, nn.Module, object]]:
    """(name, module, output) of every named submodule (or only the leaves) in the order one
    forward pass of `example` finishes them; eval mode for the pass, the model's mode is kept."""
    found: list[tuple[str, nn.Module, object]] = []
    handles = [m.register_forward_hook(lambda mod, inp, out, n=n: found.append((n, mod, out)))
               for n, m in model.named_modules() if n and not (leaves_only and list(m.children()))]
    was_training = model.training
    model.eval()
    try:
        model(example)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return found


def last_feature_map(model: nn.Module, example: torch.Tensor) -> tuple[str, nn.Module]:
    """The submodule whose output is the last spatial feature map of a forward pass.

    The end of the convolutional trunk, before global pooling: the last module (in the order the
    forward pass finishes them) whose output is 4-D with more than one spatial position, e.g.
    small-cnn's `features` or a ResNet's last stage. Found by one forward pass of `example`
    (a batch of float images) with hooks on every submodule; the model's mode is kept.
    """
    found = [n for n, _, out in forward_trace(model, example)
             if isinstance(out, torch.Tensor) and out.dim() == 4 and out.shape[2] * out.shape[3] > 1]
    if not found:
        raise BdbError(f"{type(model).__name__} produces no spatial feature map")
    return found[-1], get_module(model, found[-1])


def prune_bn_below(layers: Sequence[tuple[str, nn.Module]], masks: Sequence[torch.Tensor],
                   threshold: float) -> dict[str, list[int]]:
    """Prune (`zero_bn_scale`) every BN neuron whose mask value is below `threshold`.

    layers: (name, BatchNorm2d) pairs; masks: one tensor of mask values per layer, in the same order
    (e.g. learnt by ANP or RNP). Returns the pruned channel indices per layer name.
    """
    pruned = {}
    for (name, bn), m in zip(layers, masks):
        idx = torch.nonzero(m.detach() < threshold).flatten()
        zero_bn_scale(bn, idx)
        pruned[name] = idx.tolist()
    return pruned
