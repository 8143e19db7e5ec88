"""TrojanNN: a trigger reverse-engineered from a clean model's neurons.

Liu et al. pick internal neurons strongly connected to the output and move the pixels of a fixed
mask so that the trigger alone drives those neurons to a high value; training on samples that carry
this trigger and the target label then ties the already-excited neurons to the target.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from torch import nn

from bdcore import (Attack, AttackContext, BdbError, FeatureTap, ImageDataset, classifier, load_image, resize_uint8,
                    train_surrogate)

from bdb_attack_trojannn.config import TrojanNNConfig

CANVAS = 224
"""Side of the reference's mask images (resource/trojannn/*.png)."""
SQUARE = (145, 204)
"""Rows and columns [start, stop) of the white square on the reference's 224x224 square mask (square.png)."""


def square_mask(channels: int) -> torch.Tensor:
    """The reference's square mask image, (C, 224, 224) uint8: 255 on the square, 0 elsewhere."""
    m = torch.zeros(channels, CANVAS, CANVAS, dtype=torch.uint8)
    m[:, SQUARE[0]:SQUARE[1], SQUARE[0]:SQUARE[1]] = 255
    return m


def mask_image(cfg: TrojanNNConfig, shape: tuple[int, int, int]) -> torch.Tensor:
    """The mask image at the data's size (C, H, W) in [0, 1]: the 224x224 mask resized with Pillow's
    bilinear filter on uint8, as the reference resizes it (`transforms.Resize` on the PIL image), then /255."""
    c, h, w = shape
    if cfg.mask_image is not None:
        return load_image(cfg.mask_image, shape, "trojannn: mask_image")
    return resize_uint8(square_mask(c), (h, w)).float() / 255.0


def select_neurons(model: nn.Module, k: int) -> torch.Tensor:
    """The k inputs of the classification head with the largest sum of absolute weights over all outputs,
    strongest first (the reference's connection-strength ranking)."""
    _, head = classifier(model)
    strength = head.weight.detach().abs().sum(0)
    return torch.sort(strength, descending=True, stable=True).indices[:k].cpu()


def neuron_pgd(model: nn.Module, start: torch.Tensor, neurons: torch.Tensor, *, value: float, iterations: int,
               step: float, eps: float, tolerance: float) -> torch.Tensor:
    """Signed-gradient descent of sum_k (f_k(t * keep) - value)^2 from the mask image `start` (C, H, W) in [0, 1].

    f: the classification head's input; keep: where `start` > 0 (only those pixels reach the model). Each step
    moves t by `step` against the gradient's sign, projects it into the `eps` L-inf ball around `start` and
    into [0, 1]; it stops once the loss (before the step) is below `tolerance`. Pixels where `start` is 0 stay 0.
    """
    _, head = classifier(model)
    keep = start > 0
    t = start.clone()
    idx = neurons.to(start.device)
    with FeatureTap(head, use_input=True, detach=False) as tap:
        for _ in range(iterations):
            t.requires_grad_(True)
            model((t * keep)[None])
            loss = ((tap.value[0, idx] - value) ** 2).sum()
            (grad,) = torch.autograd.grad(loss, t)
            with torch.no_grad():
                moved = t - step * grad.sign()
                t = (start + (moved - start).clamp(-eps, eps)).clamp(0.0, 1.0)
            if loss.item() < tolerance:
                break
    return t.detach()


def to_trigger(t: torch.Tensor) -> torch.Tensor:
    """The optimised image as the reference stores it: float32 times 255, truncated to uint8 (ToPILImage)."""
    return (t.float() * 255).to(torch.uint8)


def add_trigger(x: torch.Tensor, trigger: torch.Tensor, keep: torch.Tensor, apply: str) -> torch.Tensor:
    """Images x (B, C, H, W) in [0, 1] on uint8 levels with the uint8 trigger (C, H, W).

    add-wrap: (x + t) mod 256, the reference's float64 sum cast to uint8; add-clip: min(x + t, 255);
    overwrite: t where keep (the mask > 0), else x.
    """
    t = trigger.to(device=x.device, dtype=x.dtype)
    if apply == "overwrite":
        return torch.where(keep.to(x.device), t / 255.0, x)
    total = torch.round(x * 255.0) + t
    total = torch.remainder(total, 256.0) if apply == "add-wrap" else total.clamp(max=255.0)
    return total / 255.0


def neuron_values(model: nn.Module, x: torch.Tensor, neurons: torch.Tensor) -> torch.Tensor:
    """The selected neurons' values (the classification head's inputs) on images x (B, k)."""
    _, head = classifier(model)
    with torch.no_grad(), FeatureTap(head, use_input=True) as tap:
        model(x)
        return tap.value[:, neurons.to(x.device)]


def _mask_key(cfg: TrojanNNConfig) -> str:
    if cfg.mask_image is None:
        return f"square:{SQUARE[0]}-{SQUARE[1]}"
    p = Path(cfg.mask_image)
    if not p.is_file():
        raise BdbError(f"trojannn: mask_image {p} not found")
    return "sha256:" + hashlib.sha256(p.read_bytes()).hexdigest()


class TrojanNN(Attack):
    """Dirty-label: x' = (x + t) mod 256 (uint8), t optimised on a clean surrogate; the harness relabels."""

    def __init__(self, config: TrojanNNConfig, ctx: AttackContext) -> None:
        super().__init__(config, ctx)
        self.mask = mask_image(config, ctx.shape).to(ctx.device)
        """The mask image (C, H, W) in [0, 1]: the start of the optimisation; the trigger lives where it is > 0."""
        self.trigger = torch.zeros(ctx.shape, dtype=torch.uint8, device=ctx.device)
        """The optimised trigger (C, H, W) uint8 (0 outside the mask)."""
        self.neurons = torch.empty(0, dtype=torch.long)

    def prepare(self, data: ImageDataset) -> None:
        cfg, ctx = self.config, self.ctx
        model, skey = train_surrogate(ctx, data, model=cfg.surrogate_model, seed=cfg.surrogate_seed,
                                      recipe={"epochs": cfg.surrogate_epochs, "lr": cfg.surrogate_lr})
        key = {"surrogate": skey, "mask": _mask_key(cfg), "shape": list(ctx.shape),
               **cfg.model_dump(include={"neurons", "target_value", "iterations", "step", "eps", "tolerance"})}

        def build() -> dict[str, torch.Tensor]:
            neurons = select_neurons(model, cfg.neurons)
            t = neuron_pgd(model, self.mask, neurons, value=cfg.target_value, iterations=cfg.iterations,
                           step=cfg.step, eps=cfg.eps, tolerance=cfg.tolerance)
            return {"trigger": to_trigger(t), "neurons": neurons}

        self.load_state(ctx.artifacts.get_or_build("trojannn-trigger", key, build))

    def apply_trigger(self, x: torch.Tensor, *, train: bool, idx: torch.Tensor | None = None) -> torch.Tensor:
        return add_trigger(x, self.trigger, self.mask > 0, self.config.apply)

    def state(self) -> dict[str, torch.Tensor]:
        return {"trigger": self.trigger, "neurons": self.neurons}

    def load_state(self, tensors: dict[str, torch.Tensor]) -> None:
        self.trigger = tensors["trigger"].to(self.ctx.device, torch.uint8)
        self.neurons = tensors["neurons"].long().cpu()
