"""Narcissus: a trigger that the clean model already reads as the target class.

Zeng et al. synthesise an additive, L-inf-bounded trigger that minimises a surrogate's loss
towards the target class on target-class images, so that the few poisoned target images (labels
kept) teach the victim a feature it is primed to learn; at test time the trigger is magnified.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bdcore import Attack, AttackContext, ImageDataset, augment, train_surrogate

from bdb_attack_narcissus.config import NarcissusConfig

# `bdcore.augment` (the function) is shadowed by the submodule of the same name once the trainer has
# imported it; take the function either way (core bug reported; rename the submodule to fix it there)
augment = getattr(augment, "augment", augment)


def synthesise(model: nn.Module, x: torch.Tensor, target: int, *, eps: float, rounds: int, lr: float,
               batch_size: int, gen: torch.Generator, hflip: bool | None) -> torch.Tensor:
    """The trigger (C, H, W) in [-eps, eps] minimising CE(model(clip(x + delta)), target) over images x.

    RAdam on delta, projected onto the L-inf ball after every step; hflip None: no augmentation,
    else random crop (and flip if True) of each batch, drawn from gen.
    """
    delta = torch.zeros(x.shape[1:], device=x.device, requires_grad=True)
    opt = torch.optim.RAdam([delta], lr=lr)
    for _ in range(rounds):
        order = torch.randperm(len(x), generator=gen)
        for s in range(0, len(x), batch_size):
            xb = x[order[s:s + batch_size].to(x.device)]
            if hflip is not None:
                xb = augment(xb, gen, hflip)
            y = torch.full((len(xb),), target, dtype=torch.long, device=x.device)
            loss = F.cross_entropy(model((xb + delta).clamp(0.0, 1.0)), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            with torch.no_grad():
                delta.clamp_(-eps, eps)
    return delta.detach()


class Narcissus(Attack):
    """Clean-label: target-class training images -> clip(x + delta); test images -> clip(x + m * delta)."""

    clean_label = True

    def __init__(self, config: NarcissusConfig, ctx: AttackContext) -> None:
        super().__init__(config, ctx)
        self.trigger = torch.zeros(ctx.shape, device=ctx.device)
        """The synthesised trigger (C, H, W), in [-eps, eps] on the [0, 1] scale."""

    def prepare(self, data: ImageDataset) -> None:
        cfg, ctx = self.config, self.ctx
        model, skey = train_surrogate(ctx, data, model=cfg.surrogate_model, seed=cfg.surrogate_seed,
                                      recipe={"epochs": cfg.surrogate_epochs, "lr": cfg.surrogate_lr})
        key = {"surrogate": skey, "target": ctx.target, "seed": ctx.seed,
               **cfg.model_dump(exclude={"test_magnification", "surrogate_model", "surrogate_epochs",
                                         "surrogate_lr", "surrogate_seed"})}

        def build() -> dict[str, torch.Tensor]:
            x = data.x_train[data.y_train == ctx.target].to(ctx.device).float() / 255.0
            gen = torch.Generator().manual_seed(ctx.seed)
            delta = synthesise(model, x, ctx.target, eps=cfg.eps / 255, rounds=cfg.rounds, lr=cfg.lr,
                               batch_size=cfg.batch_size, gen=gen, hflip=data.hflip if cfg.augment else None)
            return {"trigger": delta}

        self.trigger = ctx.artifacts.get_or_build("narcissus-trigger", key, build)["trigger"].to(ctx.device)

    def apply_trigger(self, x: torch.Tensor, *, train: bool, idx: torch.Tensor | None = None) -> torch.Tensor:
        m = 1.0 if train else self.config.test_magnification
        return (x + m * self.trigger.to(device=x.device, dtype=x.dtype)).clamp(0.0, 1.0)

    def state(self) -> dict[str, torch.Tensor]:
        return {"trigger": self.trigger}

    def load_state(self, tensors: dict[str, torch.Tensor]) -> None:
        self.trigger = tensors["trigger"].to(self.ctx.device)
