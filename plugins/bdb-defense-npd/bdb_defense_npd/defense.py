"""NPD: Neural Polarizer (Zhu et al., NeurIPS 2023).

A learnable linear layer (a 1x1 convolution with bias, started at the identity) is inserted
into the last block and only it is trained on the clean reserve; the backbone stays frozen
(eval mode). By default (`placement="block-input"`, the reference's `layer4.1.conv1` pre-hook) it
filters the input of the last block's first convolution, so a residual block's shortcut carries
the unfiltered features; in a plain conv stack (small-cnn, VGG: a block is one conv-BN-ReLU) that
is the input of the last convolution. `placement="stage-output"` filters the last spatial feature
map instead (after the last block). Per mini-batch, with the polarizer in place:

1. the estimated target of each sample is the model's top class other than its label; a targeted
   perturbation (L2 <= `trigger_norm` on [0, 1] images, signed steps of `pgd_step_size`,
   stopping once `pgd_stop` of the batch reaches its target) imitates a trigger;
2. the polarizer minimises
   l1 * CE(f(x), y) + l2 * CE(f(x + d), f(x)'s class)
   + l3 * -log(1 - p_k(x + d)) for k the top class of f(x + d) other than y
   + l4 * -log(1 - p_t(x + d)) for t the estimated target,
   so the perturbed features are 'polarised' away from any target while clean ones pass.

The polarizer is inserted by module wrapping, the place found on any backbone by one forward pass
(`last_block_input`, `last_feature_map`); the returned model carries it as `<layer>.polarizer`
(the wrapped module as `<layer>.inner`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bdcore import (BdbError, Defense, DefenseInputs, DefenseOutput, StepInfo, TrainHook, accuracy_on, fine_tune,
                    forward_trace, get_module, last_feature_map)

from bdb_defense_npd.config import NPDConfig


class Polarized(nn.Module):
    """A layer with a neural polarizer (a 1x1 convolution with bias, started at the identity) on its
    input (`at="input"`: polarizer, then the layer) or its output (`at="output"`: the layer, then it)."""

    def __init__(self, inner: nn.Module, channels: int, at: str = "output") -> None:
        super().__init__()
        if at not in ("input", "output"):
            raise ValueError(f"at must be 'input' or 'output', not {at!r}")
        self.inner, self.at = inner, at
        self.polarizer = nn.Conv2d(channels, channels, 1, bias=True)
        with torch.no_grad():
            self.polarizer.weight.copy_(torch.eye(channels).view(channels, channels, 1, 1))
            self.polarizer.bias.zero_()

    def forward(self, x, *args, **kwargs):
        if self.at == "input":
            return self.inner(self.polarizer(x), *args, **kwargs)
        return self.polarizer(self.inner(x, *args, **kwargs))


def insert_polarizer(model: nn.Module, name: str, channels: int, at: str = "output") -> Polarized:
    """Replace the submodule `name` of `model` by itself with a polarizer on its input or output; returns
    the wrapper."""
    parent_name, _, child = name.rpartition(".")
    parent = get_module(model, parent_name) if parent_name else model
    wrapped = Polarized(getattr(parent, child), channels, at).to(next(model.parameters()).device)
    setattr(parent, child, wrapped)
    return wrapped


def last_block_input(model: nn.Module, example: torch.Tensor) -> str:
    """The convolution whose input the reference's polarizer filters: the last block's first convolution.

    The block is the module holding the last convolution a forward pass of `example` runs, and its
    first convolution the first one registered in it (a ResNet's `layer4.1.conv1`, a shortcut
    convolution registered later is passed over). Where that module is a plain `nn.Sequential` stack
    (small-cnn's `features`, VGG), the block is the last conv-BN-ReLU: the last convolution itself.
    """
    ran = [n for n, m, _ in forward_trace(model, example, leaves_only=True) if isinstance(m, nn.Conv2d)]
    if not ran:
        raise BdbError(f"NPD: {type(model).__name__} runs no 2-D convolution to put a polarizer before")
    last = ran[-1]
    parent = last.rpartition(".")[0]
    if isinstance(get_module(model, parent) if parent else model, nn.Sequential):
        return last
    done = set(ran)
    return next(n for n, m in model.named_modules()
                if n in done and n.startswith(parent + ".") and isinstance(m, nn.Conv2d))


def _tapped(module: nn.Module, model: nn.Module, example: torch.Tensor, at: str) -> torch.Tensor | None:
    """The tensor entering (`at="input"`) or leaving (`"output"`) `module` on a forward pass of `example`."""
    seen: list = []
    if at == "input":
        h = module.register_forward_pre_hook(lambda mod, args: seen.append(args[0] if args else None))
    else:
        h = module.register_forward_hook(lambda mod, args, out: seen.append(out))
    try:
        with torch.no_grad():
            model(example)
    finally:
        h.remove()
    return seen[0] if seen and isinstance(seen[0], torch.Tensor) else None


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
    """Insert a neural polarizer into the last block and train only it on the clean reserve."""

    config: NPDConfig

    def run(self, inputs: DefenseInputs) -> DefenseOutput:
        c = self.config
        model = inputs.model.eval()
        example = inputs.reserve.batch(torch.arange(min(2, len(inputs.reserve))))[0]
        at = "input" if c.placement == "block-input" else "output"
        if c.layer is not None:
            name = c.layer
            get_module(model, name)
        elif at == "input":
            name = last_block_input(model, example)
        else:
            name, _ = last_feature_map(model, example)
        feats = _tapped(get_module(model, name), model, example, at)
        if feats is None or feats.dim() != 4:
            raise BdbError(f"NPD: the {at} of layer {name!r} is not a 4-D feature map")
        val_before = accuracy_on(model, inputs.val)
        for p in model.parameters():
            p.requires_grad_(False)
        wrapped = insert_polarizer(model, name, int(feats.shape[1]), at)
        params = list(wrapped.polarizer.parameters())
        for p in params:
            p.requires_grad_(True)
        fine_tune(model, inputs.reserve, inputs.recipe, self.ctx.seed, hooks=[PolarizerLoss(c)], params=params,
                  epochs=c.epochs, lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay, batch_size=c.batch_size,
                  augment=c.augment, optimizer="sgd", schedule="constant")
        eye = torch.eye(params[0].shape[0], device=params[0].device)
        return DefenseOutput(model=model.eval(), info={
            "layer": name, "placement": c.placement, "channels": int(params[0].shape[0]),
            "distance_from_identity": round(float((params[0].detach().flatten(1) - eye).norm()), 4),
            "val_acc_before": val_before, "val_acc_after": accuracy_on(model, inputs.val),
        })
