"""Adaptive-Patch (Qi et al., ICLR 2023): several patch triggers that weaken latent separability.

Two ingredients of the paper:
- conservatism: besides the payload samples (trigger, target label) a share of the training set
  are *cover* samples that carry the trigger but keep their true label;
- trigger diversification: k small patch triggers at fixed locations (the paper: 4); each poisoned or
  cover training sample carries only one of them, at reduced opacity (0.5, 0.2, 0.5, 0.3); test inputs
  carry them together at full opacity.
The patch patterns are drawn procedurally from a fixed seed (the paper used small logo images).
"""

from __future__ import annotations

import torch

from bdcore import AttackContext, CoverSampleAttack
from bdcore import mix_int, sample_uniforms

from bdb_attack_adap_patch.config import MAX_PATCHES, AdapPatchConfig

REFERENCE = 32

def patch_boxes(k: int, height: int, width: int, patch_size: int) -> list[tuple[int, int, int]]:
    """(top, left, side) of the k patches: corners first, then edge midpoints, 1/32 of the side from the border."""
    side = max(2, round(patch_size * height / REFERENCE))
    m = max(1, round(height / REFERENCE))
    lo_r, hi_r, mid_r = m, height - m - side, (height - side) // 2
    lo_c, hi_c, mid_c = m, width - m - side, (width - side) // 2
    spots = [(lo_r, lo_c), (lo_r, hi_c), (hi_r, lo_c), (hi_r, hi_c),
             (lo_r, mid_c), (hi_r, mid_c), (mid_r, lo_c), (mid_r, hi_c)]
    assert k <= MAX_PATCHES
    return [(r, c, side) for r, c in spots[:k]]


def make_patches(k: int, shape: tuple[int, int, int], patch_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Patterns (k, C, H, W) and masks (k, 1, H, W): random black/white (per channel) squares at fixed spots."""
    c, h, w = shape
    patterns = torch.zeros(k, c, h, w)
    masks = torch.zeros(k, 1, h, w)
    for j, (r, col, s) in enumerate(patch_boxes(k, h, w, patch_size)):
        gen = torch.Generator().manual_seed(mix_int(seed * 7919 + j))
        p = torch.randint(0, 2, (c, s, s), generator=gen).float()
        if p.sum() == 0 or p.sum() == p.numel():  # keep every patch textured
            p.view(-1)[::2] = 1 - p.view(-1)[::2]
        patterns[j, :, r:r + s, col:col + s] = p
        masks[j, :, r:r + s, col:col + s] = 1.0
    return patterns, masks


def stamp_patches(x: torch.Tensor, patterns: torch.Tensor, masks: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """x + sum_j w_bj * m_j * (t_j - x) for non-overlapping patches; weights (B, k) opacities (0: absent)."""
    t = patterns.to(device=x.device, dtype=x.dtype)
    m = masks.to(device=x.device, dtype=x.dtype)
    w = weights.to(device=x.device, dtype=x.dtype)
    out = x
    for j in range(t.shape[0]):
        out = out + w[:, j].view(-1, 1, 1, 1) * m[j] * (t[j] - out)
    return out


class AdapPatch(CoverSampleAttack):
    """Payload samples (one patch, target label) plus cover samples (one patch, true label)."""

    def __init__(self, config: AdapPatchConfig, ctx: AttackContext) -> None:
        super().__init__(config, ctx)
        k = len(config.train_alphas)
        patterns, masks = make_patches(k, ctx.shape, config.patch_size, config.pattern_seed)
        self.patterns = patterns.to(ctx.device)
        self.masks = masks.to(ctx.device)
        self.train_alphas = torch.tensor(config.train_alphas)
        test = torch.zeros(k)
        test[config.test_patches if config.test_patches is not None else list(range(k))] = config.test_alpha
        self.test_alphas = test

    def state(self) -> dict[str, torch.Tensor]:
        return {"cover_idx": self.cover_idx.cpu().contiguous()}

    def load_state(self, tensors: dict[str, torch.Tensor]) -> None:
        self.cover_idx = tensors["cover_idx"].long().cpu()

    # the trigger ------------------------------------------------------------------------------
    def chosen_patches(self, idx: torch.Tensor) -> torch.Tensor:
        """(B, k) bool: the patches each training sample carries (a fixed function of seed and index)."""
        k = len(self.config.train_alphas)
        keys = sample_uniforms(mix_int(self.ctx.seed ^ 0xAD9A), idx.cpu(), k)
        rank = keys.argsort(dim=1).argsort(dim=1)
        return rank < self.config.patches_per_sample

    def apply_trigger(self, x: torch.Tensor, *, train: bool, idx: torch.Tensor | None = None) -> torch.Tensor:
        if train:
            if idx is None:
                idx = torch.arange(len(x))
            weights = self.chosen_patches(idx).float() * self.train_alphas[None]
        else:
            weights = self.test_alphas[None].expand(len(x), -1)
        return stamp_patches(x, self.patterns, self.masks, weights)
