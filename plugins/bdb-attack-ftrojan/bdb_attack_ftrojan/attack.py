"""FTrojan: an invisible trigger written into mid and high DCT frequencies of the chrominance."""

from __future__ import annotations

import torch

from bdcore import Attack, AttackContext, BdbError, spectral_trigger

from bdb_attack_ftrojan.config import FTrojanConfig


class FTrojan(Attack):
    """Dirty-label: triggered samples from non-target classes relabelled to the target (Wang et al.)."""

    def __init__(self, config: FTrojanConfig, ctx: AttackContext) -> None:
        super().__init__(config, ctx)
        if ctx.shape[0] not in (1, 3):
            raise BdbError(f"ftrojan works on 1- or 3-channel images, not {ctx.shape[0]} channels")

    def apply_trigger(self, x: torch.Tensor, *, train: bool, idx: torch.Tensor | None = None) -> torch.Tensor:
        c = self.config
        return spectral_trigger(x, c.magnitude, c.positions, c.window, c.channels, c.color_space)
