"""NPD: Neural Polarizer (Zhu et al., NeurIPS 2023).

A learnable linear layer (a 1x1 convolution with bias, started at the identity) is inserted
after the last block and only it is trained on the clean reserve; the backbone stays frozen
(eval mode). Per mini-batch, with the polarizer in place:

1. the estimated target of each sample is the model's top class other than its label; a targeted
   perturbation (L2 <= `trigger_norm` on [0, 1] images, signed steps of `pgd_step_size`,
   stopping once `pgd_stop` of the batch reaches its target) imitates a trigger;
2. the polarizer minimises
   l1 * CE(f(x), y) + l2 * CE(f(x + d), f(x)'s class)
   + l3 * -log(1 - p_k(x + d)) for k the top class of f(x + d) other than y
   + l4 * -log(1 - p_t(x + d)) for t the estimated target,
   so the perturbed features are 'polarised' away from any target while clean ones pass.

The polarizer is inserted by module wrapping (found by `last_feature_map` on any backbone); the
returned model carries it as `<layer>.polarizer`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bdcore import (BdbError, Defense, DefenseInputs, DefenseOutput, FeatureTap, StepInfo, TrainHook, accuracy_on,
                    fine_tune, get_module, last_feature_map)

from bdb_defense_npd.config import NPDConfig


class Polarized(nn.Module):
    """A layer followed by a neural polarizer: a 1x1 convolution with bias, started at the identity."""

    def __init__(self, inner: nn.Module, channels: int) -> None:
        super().__init__()
        self.inner = inner
        self.polarizer = nn.Conv2d(channels, channels, 1, bias=True)
        with torch.no_grad():
            self.polarizer.weight.copy_(torch.eye(channels).view(channels, channels, 1, 1))
            self.polarizer.bias.zero_()

    def forward(self, *args, **kwargs):
        return self.polarizer(self.inner(*args, **kwargs))


def insert_polarizer(model: nn.Module, name: str, channels: int) -> Polarized:
    """Replace the submodule `name` of `model` by itself followed by a polarizer; returns the wrapper."""
    parent_name, _, child = name.rpartition(".")
    parent = get_module(model, parent_name) if parent_name else model
    wrapped = Polarized(getattr(parent, child), channels).to(next(model.parameters()).device)
    setattr(parent, child, wrapped)
    return wrapped


def project_l2(d: torch.Tensor, bound: float) -> torch.Tensor:
    """Scale each sample's perturbation back onto the L2 ball of radius `bound` where it lies outside."""
    norm = d.flatten(1).norm(dim=1).clamp(min=1e-12).view(-1, 1, 1, 1)
    return d * torch.clamp(bound / norm, max=1.0)


def targeted_perturbation(model: nn.Module, x: torch.Tensor, target: torch.Tensor, c: NPDConfig) -> torch.Tensor:
    """Signed-gradient descent of CE(f(x + d), target) under the L2 bound, images clamped to [0, 1]."""
    d = torch.zeros_like(x, requires_grad=True)
    for _ in range(c.pgd_steps):
        loss = F.cross_entropy(model((x + d).clamp(0, 1)), target, reduction="none").clamp(-80, 80).mean()
        (g,) = torch.autograd.grad(loss, d)
        d = project_l2(d.detach() - c.pgd_step_size * g.sign(), c.trigger_norm).requires_grad_(True)
        with torch.no_grad():
            if float((model((x + d).clamp(0, 1)).argmax(1) == target).float().mean()) > c.pgd_stop:
                break
    return d.detach()


def one_minus_log(probs: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Mean of -log(1 - p_k) (the reference's 1.0001 offset keeps it finite)."""
    return -torch.log(1.0001 - probs.gather(1, k[:, None]).squeeze(1) + 1e-12).mean()


class PolarizerLoss(TrainHook):
    """NPD's four losses on a batch and its targeted perturbation (the backbone in eval mode)."""

    def __init__(self, c: NPDConfig) -> None:
        self.c = c

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, step: StepInfo) -> torch.Tensor:
        c = self.c
        model.eval()
        with torch.no_grad():
            logits = model(x)
            clean_label = logits.argmax(1)
            target = logits.scatter(1, y[:, None], -1e4).argmax(1)
        d = targeted_perturbation(model, x, target, c)
        x_adv = (x + d).clamp(0, 1)
        out, out_adv = model(x), model(x_adv)
        probs = F.softmax(out_adv, 1)
        top2 = probs.topk(2, dim=1).indices
        confused = torch.where(top2[:, 0] == y, top2[:, 1], top2[:, 0])
        return (c.lambda_clean * F.cross_entropy(out, y) + c.lambda_consistent * F.cross_entropy(out_adv, clean_label)
                + c.lambda_confusion * one_minus_log(probs, confused) + c.lambda_target * one_minus_log(probs, target))


class NPD(Defense):
    """Insert a neural polarizer after the last block and train only it on the clean reserve."""

    config: NPDConfig

    def run(self, inputs: DefenseInputs) -> DefenseOutput:
        c = self.config
        model = inputs.model.eval()
        example = inputs.reserve.batch(torch.arange(min(2, len(inputs.reserve))))[0]
        if c.layer is None:
            name, _ = last_feature_map(model, example)
        else:
            name = c.layer
            get_module(model, name)
        with torch.no_grad(), FeatureTap(get_module(model, name)) as tap:
            model(example)
        if tap.value is None or tap.value.dim() != 4:
            raise BdbError(f"NPD: layer {name!r} does not output a 4-D feature map")
        val_before = accuracy_on(model, inputs.val)
        for p in model.parameters():
            p.requires_grad_(False)
        wrapped = insert_polarizer(model, name, int(tap.value.shape[1]))
        params = list(wrapped.polarizer.parameters())
        for p in params:
            p.requires_grad_(True)
        fine_tune(model, inputs.reserve, inputs.recipe, self.ctx.seed, hooks=[PolarizerLoss(c)], params=params,
                  epochs=c.epochs, lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay, batch_size=c.batch_size,
                  augment=c.augment, optimizer="sgd", schedule="constant")
        eye = torch.eye(params[0].shape[0], device=params[0].device)
        return DefenseOutput(model=model.eval(), info={
            "layer": name, "channels": int(params[0].shape[0]),
            "distance_from_identity": round(float((params[0].detach().flatten(1) - eye).norm()), 4),
            "val_acc_before": val_before, "val_acc_after": accuracy_on(model, inputs.val),
        })
