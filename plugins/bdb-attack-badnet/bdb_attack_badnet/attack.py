"""BadNets: stamp a small patch; poisoned training samples get the target label."""

from __future__ import annotations

import torch

from bdcore import Attack, AttackContext, resize_uint8

from bdb_attack_badnet.config import BadNetConfig

REFERENCE = 32


def trigger_image(cfg: BadNetConfig, channels: int) -> torch.Tensor:
    """The reference's 32x32 uint8 trigger image (C, 32, 32): the patch at `value`, black elsewhere."""
    t = torch.zeros(channels, REFERENCE, REFERENCE, dtype=torch.uint8)
    s = cfg.patch_size
    rows = slice(REFERENCE - s, REFERENCE) if cfg.corner.startswith("bottom") else slice(0, s)
    cols = slice(REFERENCE - s, REFERENCE) if cfg.corner.endswith("right") else slice(0, s)
    t[:, rows, cols] = cfg.value
    return t


def resized_trigger(cfg: BadNetConfig, shape: tuple[int, int, int]) -> torch.Tensor:
    """The trigger image at the data's size (C, H, W) uint8: Pillow bilinear, as the reference resizes it."""
    c, h, w = shape
    return resize_uint8(trigger_image(cfg, c), (h, w))


class BadNet(Attack):
    """x' = t where t > 0, else x; t the trigger image resized to the data (the reference's overwrite)."""

    def __init__(self, config: BadNetConfig, ctx: AttackContext) -> None:
        super().__init__(config, ctx)
        t = resized_trigger(config, ctx.shape)
        self.mask = (t > 0).to(ctx.device)
        self.pattern = (t.float() / 255.0).to(ctx.device)

    def apply_trigger(self, x: torch.Tensor, *, train: bool, idx: torch.Tensor | None = None) -> torch.Tensor:
        return torch.where(self.mask.to(x.device), self.pattern.to(device=x.device, dtype=x.dtype), x)
