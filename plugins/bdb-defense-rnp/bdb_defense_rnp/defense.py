"""RNP: Reconstructive Neuron Pruning (Li et al., ICML 2023).

1. Unlearn: a copy of the backdoored model maximises the cross-entropy of a few clean images
   (SGD, gradient ascent) until its accuracy on them falls to `clean_threshold`. Clean features
   are erased first, while the backdoor neurons survive the filter-level unlearning.
2. Recover: every BN neuron of the unlearned model gets a mask m in [0, 1] on its scale (gamma),
   and only the masks are trained to minimise the clean cross-entropy again. Recovering the
   clean function re-enables clean neurons and leaves the backdoor neurons with small masks.
3. Prune: in the *original* model, the BN scale of every neuron whose mask is below `threshold`
   is zeroed (its shift kept, as the mask acts on the scale only).

Both stages run through the shared trainer (a gradient-ascent loss hook with an early stop; the
masks as the only optimised tensors) and the core's backbone-agnostic `ChannelMask`.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bdcore import (BdbError, ChannelMask, Defense, DefenseInputs, DefenseOutput, StepInfo, TrainHook, TrainSet,
                    accuracy_on, batchnorms, fine_tune, prune_bn_below)

from bdb_defense_rnp.config import RNPConfig


class GradientAscent(TrainHook):
    """Maximise the cross-entropy; stop after the first epoch whose accuracy on its batches is <= threshold."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self.epoch_acc: list[float] = []
        self._correct = self._seen = 0
        self._info: StepInfo | None = None

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, step: StepInfo) -> torch.Tensor:
        out = model(x)
        self._correct += int((out.argmax(1) == y).sum())
        self._seen += len(y)
        self._info = step
        return -F.cross_entropy(out, y)

    def on_epoch_end(self, model: nn.Module, epoch: int) -> None:
        acc = self._correct / max(1, self._seen)
        self.epoch_acc.append(round(acc, 4))
        self._correct = self._seen = 0
        if acc <= self.threshold and self._info is not None:
            self._info.stop = True


class ScaledLoss(TrainHook):
    """The clean cross-entropy times `alpha` (the reference's recovery loss, alpha = 0.2)."""

    def __init__(self, alpha: float) -> None:
        self.alpha = alpha

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, step: StepInfo) -> torch.Tensor:
        return self.alpha * F.cross_entropy(model(x), y)


class ClampMasks(TrainHook):
    """Keeps the masks in [0, 1] after every step."""

    def __init__(self, mask: ChannelMask) -> None:
        self.mask = mask

    def after_step(self, model: nn.Module, step: StepInfo) -> None:
        with torch.no_grad():
            for p in self.mask.parameters():
                p.clamp_(0, 1)


def class_fraction(data: TrainSet, fraction: float, seed: int) -> TrainSet:
    """A class-stratified share of a TrainSet (at least one sample per present class)."""
    if fraction >= 1:
        return data
    y = data.y.cpu().numpy()
    rng = np.random.default_rng(seed)
    keep = [rng.permutation(np.flatnonzero(y == c))[:max(1, round(fraction * int((y == c).sum())))] for c in np.unique(y)]
    return data.subset(torch.from_numpy(np.sort(np.concatenate(keep))))


def unlearn(model: nn.Module, data: TrainSet, inputs: DefenseInputs, c: RNPConfig, seed: int) -> list[float]:
    """Gradient-ascent unlearning in place; returns the accuracy of every unlearning epoch."""
    hook = GradientAscent(c.clean_threshold)
    fine_tune(model, data, inputs.recipe, seed, hooks=[hook], epochs=c.max_unlearn_epochs, lr=c.unlearn_lr,
              momentum=c.unlearn_momentum, weight_decay=c.unlearn_weight_decay, batch_size=c.batch_size,
              augment=c.augment, optimizer="sgd", schedule="constant")
    return hook.epoch_acc


def recover_masks(model: nn.Module, data: TrainSet, inputs: DefenseInputs, c: RNPConfig, seed: int) -> ChannelMask:
    """Masks on every BN scale of `model`, trained to minimise the clean loss (the model's weights frozen)."""
    mask = ChannelMask(model, bn_scale=True)
    for p in model.parameters():
        p.requires_grad_(False)
    with mask.attached(model):
        fine_tune(model, data, inputs.recipe, seed, hooks=[ScaledLoss(c.alpha), ClampMasks(mask)],
                  params=list(mask.parameters()),
                  epochs=c.mask_epochs, lr=c.mask_lr, momentum=c.mask_momentum, weight_decay=0.0,
                  batch_size=c.batch_size, augment=c.augment, optimizer="sgd", schedule="constant")
    return mask


def prune_below(model: nn.Module, mask: ChannelMask, threshold: float) -> dict[str, list[int]]:
    """Zero the BN scale of every neuron of `model` whose mask (same layer names) is below `threshold`."""
    layers = batchnorms(model)
    return prune_bn_below(layers, [mask.mask_of(name) for name, _ in layers], threshold)


def prune_smallest(model: nn.Module, mask: ChannelMask, number: int) -> dict[str, list[int]]:
    """Zero the BN scale of the `number` neurons of `model` with the smallest masks (ties: layer order, then index)."""
    layers = batchnorms(model)
    values = [mask.mask_of(name).detach().flatten().cpu() for name, _ in layers]
    flat = torch.cat(values)
    if number > flat.numel():
        raise BdbError(f"pruning_number {number} exceeds the model's {flat.numel()} BN neurons")
    keep = torch.ones(flat.numel())
    keep[torch.sort(flat, stable=True).indices[:number]] = 0.0
    return prune_bn_below(layers, keep.split([v.numel() for v in values]), 0.5)


class RNP(Defense):
    """Unlearn, recover neuron masks, prune the original model by mask threshold."""

    config: RNPConfig

    def run(self, inputs: DefenseInputs) -> DefenseOutput:
        c = self.config
        model = inputs.model
        data = class_fraction(inputs.reserve, c.data_fraction, self.ctx.seed)
        unlearned = copy.deepcopy(model)
        accs = unlearn(unlearned, data, inputs, c, self.ctx.seed)
        mask = recover_masks(unlearned, data, inputs, c, self.ctx.seed)
        flat = torch.cat([p.detach().flatten() for p in mask.parameters()])
        val_before = accuracy_on(model, inputs.val)
        if c.pruning_by == "number":
            pruned = prune_smallest(model, mask, c.pruning_number)
        else:
            pruned = prune_below(model, mask, c.threshold)
        info = {
            "samples": len(data), "unlearn_epoch_acc": accs, "unlearned_val_acc": accuracy_on(unlearned, inputs.val),
            "mask_quantiles": {str(q): round(float(flat.quantile(q)), 4) for q in (0.0, 0.01, 0.05, 0.1, 0.5)},
            "pruned": pruned, "pruned_count": sum(len(v) for v in pruned.values()), "neurons": int(flat.numel()),
            "val_acc_before": val_before, "val_acc_after": accuracy_on(model, inputs.val),
        }
        if not info["pruned_count"]:
            rule = f"{c.pruning_number} smallest" if c.pruning_by == "number" else f"below {c.threshold}"
            info["unchanged"] = f"no neuron's recovered mask was pruned ({rule})"
        return DefenseOutput(model=model.eval(), info=info)
