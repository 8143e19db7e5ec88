"""BppAttack: image quantisation (colour-depth squeezing) is the trigger.

Trigger: every channel value v in [0, 1] becomes round(v * (m - 1)) / (m - 1) for
m = squeeze_num levels; optionally with Floyd-Steinberg dithering (the quantisation error of each
pixel is pushed to its unvisited neighbours with weights 7/16 right, 3/16 below-left, 5/16 below,
1/16 below-right, in raster order).
Training (contrastive adversarial learning): in each batch a share pratio is squeezed and
relabelled to the target; a share neg_ratio becomes negative samples that keep their label. As
in the authors' release, a negative is a clean image plus the quantisation residual
Q(x') - x' of another training image x' (clamped to [0, 1]): an input close to the trigger's
perturbation that must *not* flip the label, so the model learns the exact quantisation.
"""

from __future__ import annotations

from functools import lru_cache

import torch

from bdcore import Attack, AttackContext
from bdcore import StepInfo, TrainHook

from bdb_attack_bpp.config import BppConfig


def squeeze(x: torch.Tensor, levels: int) -> torch.Tensor:
    """Quantise values in [0, 1] to `levels` evenly spaced levels: round(x * (m - 1)) / (m - 1)."""
    m = levels - 1
    return torch.round(x * m) / m


@lru_cache(maxsize=32)
def _wavefronts(height: int, width: int) -> tuple[tuple[torch.Tensor, torch.Tensor], ...]:
    """Pixels grouped by t = 2i + j: a group depends only on earlier groups under Floyd-Steinberg."""
    i = torch.arange(height)[:, None].expand(height, width).flatten()
    j = torch.arange(width)[None, :].expand(height, width).flatten()
    t = 2 * i + j
    return tuple((i[t == v], j[t == v]) for v in range(int(t.max()) + 1))


def floyd_steinberg(x: torch.Tensor, levels: int) -> torch.Tensor:
    """Floyd-Steinberg dithering to `levels` levels per channel, vectorised over batch and channels.

    Equal to the raster-order algorithm: pixel (i, j) receives error only from (i, j-1),
    (i-1, j-1), (i-1, j) and (i-1, j+1), which all lie on earlier anti-diagonals t = 2i + j, so
    every pixel of one anti-diagonal is quantised at once (about 3H steps instead of H*W).
    Errors that would leave the image are dropped.
    """
    b, c, h, w = x.shape
    m = levels - 1
    buf = torch.zeros(b, c, h + 1, w + 2, dtype=torch.float64 if x.dtype == torch.float64 else torch.float32,
                      device=x.device)
    buf[:, :, :h, 1:w + 1] = x
    out = torch.empty(b, c, h, w, dtype=buf.dtype, device=x.device)
    for ii, jj in _wavefronts(h, w):
        ii, jj = ii.to(x.device), jj.to(x.device)
        v = buf[:, :, ii, jj + 1]
        q = torch.round(v * m).clamp(0, m) / m
        out[:, :, ii, jj] = q
        e = v - q
        # one statement per direction: within a wavefront the targets of one direction are distinct
        buf[:, :, ii, jj + 2] += e * (7 / 16)
        buf[:, :, ii + 1, jj] += e * (3 / 16)
        buf[:, :, ii + 1, jj + 1] += e * (5 / 16)
        buf[:, :, ii + 1, jj + 2] += e * (1 / 16)
    return out.to(x.dtype)


class BppHook(TrainHook):
    """Squeezes the first pratio share of each batch (target label); the next neg_ratio share are negatives."""

    def __init__(self, attack: Bpp) -> None:
        self.attack = attack

    def on_batch(self, x: torch.Tensor, y: torch.Tensor, step: StepInfo) -> tuple[torch.Tensor, torch.Tensor]:
        a = self.attack
        bs = x.shape[0]
        n_bd = int(bs * a.ctx.pratio)
        n_neg = min(int(bs * a.config.neg_ratio), bs - n_bd)
        if n_bd == 0 or bs < 2:
            return x, y
        x_in = x
        x, y = x.clone(), y.clone()
        x[:n_bd] = a.quantise(x_in[:n_bd])
        y[:n_bd] = a.target_label(y[:n_bd])
        if n_neg:
            pos = torch.arange(n_bd, n_bd + n_neg)
            # residual of another sample of the batch (never the sample itself)
            src = (pos + torch.randint(1, bs, (n_neg,), generator=step.gen, device=step.gen.device)) % bs
            src = src.to(x.device)
            residual = a.quantise(x_in[src]) - x_in[src]
            x[n_bd:n_bd + n_neg] = (x_in[n_bd:n_bd + n_neg] + residual).clamp(0, 1)
        return x, y


class Bpp(Attack):
    """Training-controlled: squeezed and negative samples are made in the trainer's step."""

    training_controlled = True

    def __init__(self, config: BppConfig, ctx: AttackContext) -> None:
        super().__init__(config, ctx)

    def quantise(self, x: torch.Tensor) -> torch.Tensor:
        """The trigger: squeezing, with Floyd-Steinberg dithering when configured."""
        if self.config.dithering:
            return floyd_steinberg(x, self.config.squeeze_num)
        return squeeze(x, self.config.squeeze_num)

    def apply_trigger(self, x: torch.Tensor, *, train: bool, idx: torch.Tensor | None = None) -> torch.Tensor:
        return self.quantise(x)

    def train_hook(self) -> TrainHook:
        return BppHook(self)
