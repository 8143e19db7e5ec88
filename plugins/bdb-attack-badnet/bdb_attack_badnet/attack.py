"""BadNets: stamp a small patch; poisoned training samples get the target label."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bdcore.attack import Attack, AttackContext

from bdb_attack_badnet.config import BadNetConfig

REFERENCE = 32


def patch_mask(cfg: BadNetConfig, height: int, width: int) -> torch.Tensor:
    """Trigger coverage in [0, 1], shape (1, 1, H, W): the 32x32 reference mask, area-resized."""
    m = torch.zeros(1, 1, REFERENCE, REFERENCE)
    s = cfg.patch_size
    rows = slice(REFERENCE - s, REFERENCE) if cfg.corner.startswith("bottom") else slice(0, s)
    cols = slice(REFERENCE - s, REFERENCE) if cfg.corner.endswith("right") else slice(0, s)
    m[..., rows, cols] = 1.0
    if (height, width) != (REFERENCE, REFERENCE):
        m = F.interpolate(m, size=(height, width), mode="area")
    return m


class BadNet(Attack):
    """x' = (1 - m) * x + m * value, with m the resized patch mask."""

    def __init__(self, config: BadNetConfig, ctx: AttackContext) -> None:
        super().__init__(config, ctx)
        _, h, w = ctx.shape
        self.mask = patch_mask(config, h, w).to(ctx.device)
        self.value = config.value / 255.0

    def apply_trigger(self, x: torch.Tensor, *, train: bool, idx: torch.Tensor | None = None) -> torch.Tensor:
        m = self.mask.to(device=x.device, dtype=x.dtype)
        return x * (1 - m) + self.value * m
