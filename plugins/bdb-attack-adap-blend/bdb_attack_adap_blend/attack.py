"""Adaptive-Blend (Qi et al., ICLR 2023): a blend trigger that weakens latent separability.

Two ingredients of the paper:
- conservatism: besides the payload samples (trigger, target label) a share of the training set
  are *cover* samples that carry the trigger but keep their true label;
- trigger diversification: the trigger is split into a g x g grid of pieces and each poisoned or
  cover training sample carries only a random subset of them (the paper: half of 16 pieces), blended
  with alpha 0.15; at test time the full trigger is blended with a higher alpha (0.2).
"""

from __future__ import annotations

import math

import torch

from bdcore import AttackContext, CoverSampleAttack
from bdcore import mix_int, sample_uniforms
from bdcore import load_image, random_pattern

from bdb_attack_adap_blend.config import AdapBlendConfig

def piece_map(pieces: int, height: int, width: int) -> torch.Tensor:
    """Piece id (row-major over a g x g grid, g = sqrt(pieces)) of every pixel, shape (H, W)."""
    g = math.isqrt(pieces)
    rows = torch.arange(height) * g // height
    cols = torch.arange(width) * g // width
    return rows[:, None] * g + cols[None, :]


def piece_masks(keep: torch.Tensor, pmap: torch.Tensor) -> torch.Tensor:
    """Pixel masks (B, 1, H, W) from per-sample kept pieces keep (B, P) and a piece map (H, W)."""
    return keep[:, pmap.to(keep.device)][:, None].float()


def blend(x: torch.Tensor, pattern: torch.Tensor, alpha: float, mask: torch.Tensor | None = None) -> torch.Tensor:
    """x + alpha * mask * (pattern - x); mask (B, 1, H, W) or None for the full trigger."""
    t = pattern.to(device=x.device, dtype=x.dtype)
    a = alpha if mask is None else alpha * mask.to(device=x.device, dtype=x.dtype)
    return x + a * (t - x)


class AdapBlend(CoverSampleAttack):
    """Payload samples (trigger pieces, target label) plus cover samples (trigger pieces, true label)."""

    def __init__(self, config: AdapBlendConfig, ctx: AttackContext) -> None:
        super().__init__(config, ctx)
        if config.trigger_image:
            pattern = load_image(config.trigger_image, ctx.shape, "adap-blend: trigger_image")
        else:
            pattern = random_pattern(ctx.shape, config.pattern_seed)
        self.pattern = pattern.to(ctx.device)
        _, h, w = ctx.shape
        self.pmap = piece_map(config.pieces, h, w)

    def state(self) -> dict[str, torch.Tensor]:
        return {"cover_idx": self.cover_idx.cpu().contiguous(), "pattern": self.pattern.cpu().contiguous()}

    def load_state(self, tensors: dict[str, torch.Tensor]) -> None:
        self.cover_idx = tensors["cover_idx"].long().cpu()
        if "pattern" in tensors:
            self.pattern = tensors["pattern"].float().to(self.ctx.device)

    # the trigger ------------------------------------------------------------------------------
    def kept_pieces(self, idx: torch.Tensor) -> torch.Tensor:
        """(B, P) bool: the pieces each training sample carries (a fixed function of seed and index)."""
        p = self.config.pieces
        n_keep = p - int(round(self.config.mask_rate * p))
        keys = sample_uniforms(mix_int(self.ctx.seed ^ 0xAB1E), idx.cpu(), p)
        rank = keys.argsort(dim=1).argsort(dim=1)
        return rank < n_keep

    def apply_trigger(self, x: torch.Tensor, *, train: bool, idx: torch.Tensor | None = None) -> torch.Tensor:
        if not train:
            return blend(x, self.pattern, self.config.alpha_test)
        if idx is None:
            idx = torch.arange(len(x))
        mask = piece_masks(self.kept_pieces(idx).to(x.device), self.pmap)
        return blend(x, self.pattern, self.config.alpha_train, mask)
