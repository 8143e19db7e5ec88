"""Blind Backdoors: the attack rewrites only the loss computation of the training code.

For every batch (x, y) the attack code makes a copy, stamps a fixed 5x3 pixel pattern on it
(white/black pixels, the rest of the 5x3 box transparent; rows 3-7, columns 23-25 as in the
authors' code) and labels it with the target. The training loss becomes
    l_blind = a0 * CE(f(x), y) + a1 * CE(f(x*), y*)
with fixed a0 = clean_weight, a1 = backdoor_weight, or (option) the MGDA two-task min-norm
scales. Until the running clean loss drops below loss_threshold the loss is the clean one only.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from bdcore import Attack, AttackContext
from bdcore import BdbError
from bdcore import StepInfo, TrainHook

from bdb_attack_blind.config import BlindConfig

NA = float("nan")
PATTERN = torch.tensor([
    [1.0, 0.0, 1.0],
    [NA, 1.0, NA],
    [NA, NA, 0.0],
    [NA, 1.0, NA],
    [1.0, 0.0, 1.0],
])
"""The 5x3 pattern: 1 white, 0 black, NaN transparent (the image shows through)."""

REFERENCE = 32


def pattern_position(cfg: BlindConfig, height: int, width: int) -> tuple[int, int]:
    """Top-left corner of the pattern: as configured when it fits, else scaled from 32x32 and clipped."""
    ph, pw = PATTERN.shape
    if height < ph or width < pw:
        raise BdbError(f"blind: the 5x3 pattern does not fit {height}x{width} images")
    r, c = cfg.pattern_row, cfg.pattern_col
    if r + ph <= height and c + pw <= width:
        return r, c
    r = min(round(r * height / REFERENCE), height - ph)
    c = min(round(c * width / REFERENCE), width - pw)
    return r, c


def pattern_and_mask(cfg: BlindConfig, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Full-size pattern values and mask, each (1, 1, H, W); mask is 1 on the 9 stamped pixels."""
    r, c = pattern_position(cfg, height, width)
    ph, pw = PATTERN.shape
    mask = torch.zeros(1, 1, height, width)
    values = torch.zeros(1, 1, height, width)
    box = ~torch.isnan(PATTERN)
    mask[0, 0, r:r + ph, c:c + pw] = box.float()
    values[0, 0, r:r + ph, c:c + pw] = torch.nan_to_num(PATTERN, nan=0.0)
    return values, mask


def stamp_pattern(x: torch.Tensor, values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """x' = (1 - mask) * x + mask * pattern, on every channel."""
    m = mask.to(device=x.device, dtype=x.dtype)
    return x * (1 - m) + values.to(device=x.device, dtype=x.dtype) * m


def mgda_scales(g_clean: list[torch.Tensor], g_bd: list[torch.Tensor]) -> tuple[float, float]:
    """Two-task min-norm element of the convex hull of the gradients (MGDA): (scale_clean, scale_bd).

    gamma = argmin_{g in [0, 1]} || g * g1 + (1 - g) * g2 ||^2 = clamp((g2 - g1) . g2 / ||g1 - g2||^2, 0, 1).
    """
    d11, d22, d12 = (float(v) for v in torch.stack([
        sum((a * a).sum() for a in g_clean), sum((b * b).sum() for b in g_bd),
        sum((a * b).sum() for a, b in zip(g_clean, g_bd)),
    ]).cpu())
    denom = d11 + d22 - 2 * d12
    if denom <= 1e-20:
        return 0.5, 0.5
    gamma = min(1.0, max(0.0, (d22 - d12) / denom))
    return gamma, 1.0 - gamma


class BlindHook(TrainHook):
    """Replaces the loss with the blind loss; keeps an EMA of the clean loss for the switch-on rule."""

    def __init__(self, attack: Blind) -> None:
        self.attack = attack
        self.running_clean = float("nan")
        self.active_steps = 0
        self.last_scales: tuple[float, float] = (1.0, 0.0)

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, step: StepInfo) -> torch.Tensor:
        a, cfg = self.attack, self.attack.config
        on = not math.isnan(self.running_clean) and self.running_clean < cfg.loss_threshold
        if on:
            share = cfg.copy_share if cfg.copy_share is not None else a.ctx.pratio
            n = max(1, round(share * x.shape[0]))
            x_bd, y_bd = x.clone(), y.clone()
            x_bd[:n] = a.apply_trigger(x[:n], train=True)
            y_bd[:n] = a.target_label(y[:n])
            # one forward pass over [clean; copy]: BatchNorm sees both in one batch, so the model
            # cannot tell a stamped copy from its batch statistics (see README)
            logits = model(torch.cat([x, x_bd]))
            l_clean = F.cross_entropy(logits[:len(x)], y)
            l_bd = F.cross_entropy(logits[len(x):], y_bd)
        else:
            l_clean = F.cross_entropy(model(x), y)
        lv = float(l_clean.detach())
        self.running_clean = lv if math.isnan(self.running_clean) else 0.9 * self.running_clean + 0.1 * lv
        if not on:
            self.last_scales = (1.0, 0.0)
            return l_clean
        self.active_steps += 1
        if cfg.balance == "mgda":
            s_clean, s_bd = self._mgda(model, l_clean, l_bd)
        else:
            s_clean, s_bd = cfg.clean_weight, cfg.backdoor_weight
        self.last_scales = (s_clean, s_bd)
        return s_clean * l_clean + s_bd * l_bd

    def _mgda(self, model: nn.Module, l_clean: torch.Tensor, l_bd: torch.Tensor) -> tuple[float, float]:
        params = [p for p in model.parameters() if p.requires_grad]
        grads = []
        for loss in (l_clean, l_bd):
            g = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
            g = [torch.zeros_like(p) if gi is None else gi.detach().float() for gi, p in zip(g, params)]
            mode = self.attack.config.mgda_normalize
            scale = 1.0
            if mode in ("loss", "loss+"):
                scale *= float(loss.detach())
            if mode in ("l2", "loss+"):
                scale *= float(torch.sqrt(sum((gi * gi).sum() for gi in g)))
            scale += 1e-5
            grads.append([gi / scale for gi in g])
        return mgda_scales(grads[0], grads[1])


class Blind(Attack):
    """Training-controlled (loss): no training sample is changed; the test trigger is the pattern."""

    training_controlled = True

    def __init__(self, config: BlindConfig, ctx: AttackContext) -> None:
        super().__init__(config, ctx)
        _, h, w = ctx.shape
        values, mask = pattern_and_mask(config, h, w)
        self.values, self.mask = values.to(ctx.device), mask.to(ctx.device)

    def apply_trigger(self, x: torch.Tensor, *, train: bool, idx: torch.Tensor | None = None) -> torch.Tensor:
        return stamp_pattern(x, self.values, self.mask)

    def train_hook(self) -> TrainHook:
        return BlindHook(self)
