"""CTRL: a frequency-domain trigger in the chrominance of target-class images, labels kept."""

from __future__ import annotations

import torch

from bdcore import Attack, AttackContext, BdbError, spectral_trigger

from bdb_attack_ctrl.config import CTRLConfig


class CTRL(Attack):
    """Clean-label: the spectral trigger on target-class training images, labels unchanged (Li et al.)."""

    clean_label = True

    def __init__(self, config: CTRLConfig, ctx: AttackContext) -> None:
        super().__init__(config, ctx)
        if ctx.shape[0] not in (1, 3):
            raise BdbError(f"ctrl works on 1- or 3-channel images, not {ctx.shape[0]} channels")

    def apply_trigger(self, x: torch.Tensor, *, train: bool, idx: torch.Tensor | None = None) -> torch.Tensor:
        c = self.config
        return spectral_trigger(x, c.magnitude, c.positions, c.window, c.channels, c.color_space)
