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

from bdcore.attack import Attack, AttackContext
from bdcore.images import load_image, random_pattern

from bdb_attack_adap_blend.config import AdapBlendConfig

_M32 = 0xFFFFFFFF


def _mix_int(v: int) -> int:
    """32-bit integer hash (Python ints), the same mixing as `_mix32`."""
    v &= _M32
    v ^= v >> 16
    v = (v * 0x45D9F3B) & _M32
    v ^= v >> 16
    v = (v * 0x45D9F3B) & _M32
    return v ^ (v >> 16)


def _mix32(x: torch.Tensor) -> torch.Tensor:
    """32-bit integer hash of int64 tensors holding values in [0, 2^32) (no int64 overflow)."""
    x = x ^ (x >> 16)
    x = (x * 0x45D9F3B) & _M32
    x = x ^ (x >> 16)
    x = (x * 0x45D9F3B) & _M32
    return x ^ (x >> 16)


def sample_uniforms(seed: int, idx: torch.Tensor, streams: int) -> torch.Tensor:
    """Uniforms in [0, 1), shape (len(idx), streams), a fixed function of (seed, sample index, stream)."""
    key = idx.long() & _M32
    cols = []
    for s in range(streams):
        salt = _mix_int(_mix_int(seed) + 0x9E3779B9 * (s + 1))
        h = _mix32((_mix32((key + salt) & _M32) + _mix_int(salt)) & _M32)
        cols.append(h.double() / 2.0**32)
    return torch.stack(cols, dim=1)


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


class AdapBlend(Attack):
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
        self.cover_idx = torch.empty(0, dtype=torch.long)
        """Training indices of the cover samples (set by poison_indices, saved with state())."""

    # which samples ----------------------------------------------------------------------------
    @property
    def cover_ratio(self) -> float:
        return self.ctx.pratio if self.config.cover_ratio is None else self.config.cover_ratio

    def payload_count(self, n_train: int) -> int:
        return int(round(self.ctx.pratio * n_train))

    def cover_count(self, n_train: int) -> int:
        return int(round(self.cover_ratio * n_train))

    def poison_count(self, n_train: int) -> int:
        return self.payload_count(n_train) + self.cover_count(n_train)

    def poison_indices(self, y_train: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Payload samples (from samples whose label the mapping changes) plus, disjoint from them,
        cover samples drawn from the whole training set. Both carry the trigger; see poison_y."""
        y = y_train.cpu()
        n = len(y)
        pool = torch.nonzero(self.target_label(y) != y).flatten()
        payload = pool[torch.randperm(len(pool), generator=gen)[: min(self.payload_count(n), len(pool))]]
        rest = torch.ones(n, dtype=torch.bool)
        rest[payload] = False
        rest_idx = torch.nonzero(rest).flatten()
        cover = rest_idx[torch.randperm(len(rest_idx), generator=gen)[: min(self.cover_count(n), len(rest_idx))]]
        self.cover_idx = cover.sort().values
        return torch.cat([payload, cover]).sort().values

    def poison_y(self, y: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """Payload samples get the target label; cover samples keep their own."""
        out = self.target_label(y)
        is_cover = torch.isin(idx, self.cover_idx.to(idx.device))
        return torch.where(is_cover, y, out)

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
        keys = sample_uniforms(_mix_int(self.ctx.seed ^ 0xAB1E), idx.cpu(), p)
        rank = keys.argsort(dim=1).argsort(dim=1)
        return rank < n_keep

    def apply_trigger(self, x: torch.Tensor, *, train: bool, idx: torch.Tensor | None = None) -> torch.Tensor:
        if not train:
            return blend(x, self.pattern, self.config.alpha_test)
        if idx is None:
            idx = torch.arange(len(x))
        mask = piece_masks(self.kept_pieces(idx).to(x.device), self.pmap)
        return blend(x, self.pattern, self.config.alpha_train, mask)
