"""Blended: alpha-blend a trigger image over the whole input."""

from __future__ import annotations

import torch

from bdcore import Attack, AttackContext
from bdcore import load_image, random_pattern

from bdb_attack_blended.config import BlendedConfig


class Blended(Attack):
    """x' = (1 - alpha) * x + alpha * t; alpha_train for poisoned training data, alpha_test at test."""

    def __init__(self, config: BlendedConfig, ctx: AttackContext) -> None:
        super().__init__(config, ctx)
        if config.trigger_image:
            pattern = load_image(config.trigger_image, ctx.shape, "blended: trigger_image")
        else:
            pattern = random_pattern(ctx.shape, config.pattern_seed)
        self.pattern = pattern.to(ctx.device)

    def apply_trigger(self, x: torch.Tensor, *, train: bool, idx: torch.Tensor | None = None) -> torch.Tensor:
        a = self.config.alpha_train if train else self.config.alpha_test
        return (1 - a) * x + a * self.pattern.to(device=x.device, dtype=x.dtype)
