"""Refool: plant a reflection of another image into the input (Liu et al., ECCV 2020).

The paper models an image with a reflection as x_adv = x + x_R (conv) k, with three kernels k:
  (I)   in focus: k is an intensity (the reflection is added sharp);
  (II)  out of focus: k is a Gaussian blur kernel of random sigma;
  (III) ghost effect: k = b * delta(0) + (1 - b) * delta(d), a copy of the reflection shifted by d and
        attenuated.
As in the paper's reference implementation the two layers are mixed in linear light with weights
alpha_t (transmission) and 1 - alpha_t (reflection) and converted back with the display gamma.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from bdcore import Attack, AttackContext
from bdcore import mix_int, sample_uniforms
from bdcore import BdbError
from bdcore import gaussian_blur, load_image_dir

from bdb_attack_refool.config import RefoolConfig

IN_FOCUS, OUT_OF_FOCUS, GHOST = 0, 1, 2
class ReflectionParams(NamedTuple):
    """Per-sample reflection parameters (all tensors of length B)."""

    which: torch.Tensor  # index into the reflection set
    kind: torch.Tensor  # IN_FOCUS, OUT_OF_FOCUS or GHOST
    sigma: torch.Tensor  # blur sigma (type II)
    shift: torch.Tensor  # (B, 2) ghost shift in pixels (rows, cols) (type III)
    beta: torch.Tensor  # ghost attenuation b (type III)
    alpha_t: torch.Tensor  # transmission weight


def draw_params(cfg: RefoolConfig, seed: int, idx: torch.Tensor, num_reflections: int) -> ReflectionParams:
    """The reflection parameters of samples idx: a deterministic function of (seed, idx)."""
    u = sample_uniforms(seed, idx, 8).float()
    which = (u[:, 0] * num_reflections).long().clamp_max(num_reflections - 1)
    kind = torch.full_like(which, OUT_OF_FOCUS)
    kind[u[:, 1] < cfg.ghost_rate + cfg.in_focus_rate] = IN_FOCUS
    kind[u[:, 1] < cfg.ghost_rate] = GHOST
    sigma = cfg.sigma_min + (cfg.sigma_max - cfg.sigma_min) * u[:, 2]
    span = cfg.ghost_offset_max - cfg.ghost_offset_min + 1
    shift = cfg.ghost_offset_min + (u[:, 3:5] * span).long().clamp_max(span - 1)
    a = cfg.ghost_alpha_min + (cfg.ghost_alpha_max - cfg.ghost_alpha_min) * u[:, 5]
    beta = torch.where(u[:, 6] > 0.5, 1.0 - a, a)  # |s - a| with s in {0, 1}
    if cfg.alpha_t is None:
        alpha_t = 1.0 - (0.05 + 0.40 * u[:, 7])
    else:
        alpha_t = torch.full_like(sigma, cfg.alpha_t)
    return ReflectionParams(which, kind, sigma, shift, beta, alpha_t)


# the reflection model ----------------------------------------------------------------------------
def shift_image(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Per-sample translation by (rows, cols) = shift (down/right for positive values), zero fill."""
    b, c, h, w = x.shape
    shift = shift.to(x.device)
    rows = torch.arange(h, device=x.device)[None, :] - shift[:, :1]  # (B, H) source rows
    cols = torch.arange(w, device=x.device)[None, :] - shift[:, 1:]  # (B, W) source cols
    valid = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]
    bi = torch.arange(b, device=x.device)[:, None, None]
    out = x.permute(0, 2, 3, 1)[bi, rows.clamp(0, h - 1)[:, :, None], cols.clamp(0, w - 1)[:, None, :]]
    return out.permute(0, 3, 1, 2) * valid[:, None].to(x.dtype)


def add_reflection(x: torch.Tensor, r: torch.Tensor, kind: torch.Tensor, sigma: torch.Tensor,
                   shift: torch.Tensor, beta: torch.Tensor, alpha_t: torch.Tensor, gamma: float) -> torch.Tensor:
    """Blend reflection images r into x, both (B, C, H, W) in [0, 1], one reflection type per sample.

    In linear light T = x^g, R = r^g:  type I  R_k = R;  type II  R_k = G_sigma * R;
    type III  R_k = b R + (1 - b) shift_d(R).  Output (alpha_t T + (1 - alpha_t) R_k)^(1/g).
    """
    dt = x.dtype
    t_lin = x.clamp(0, 1) ** gamma
    r_lin = r.to(device=x.device, dtype=dt).clamp(0, 1) ** gamma
    kind = kind.to(x.device)
    view = (-1, 1, 1, 1)
    out_r = r_lin
    if bool((kind == OUT_OF_FOCUS).any()):
        blurred = gaussian_blur(r_lin, sigma, truncate=2.0)  # radius ceil(2 sigma), replicated border
        out_r = torch.where((kind == OUT_OF_FOCUS).view(view), blurred, out_r)
    if bool((kind == GHOST).any()):
        bt = beta.to(device=x.device, dtype=dt).view(view)
        ghost = bt * r_lin + (1 - bt) * shift_image(r_lin, shift)
        out_r = torch.where((kind == GHOST).view(view), ghost, out_r)
    a = alpha_t.to(device=x.device, dtype=dt).view(view)
    return (a * t_lin + (1 - a) * out_r).clamp(0, 1) ** (1.0 / gamma)


# reflection sources ------------------------------------------------------------------------------
class Refool(Attack):
    """Reflection backdoor: poisoned samples get a reflection from a fixed candidate set (the trigger family)."""

    def __init__(self, config: RefoolConfig, ctx: AttackContext) -> None:
        super().__init__(config, ctx)
        self.clean_label = config.clean_label
        self.reflections: torch.Tensor | None = None
        """(K, C, H, W) float [0, 1]: the reflection candidate set."""
        self.reflection_source: torch.Tensor | None = None
        """Training indices the reflections were taken from (empty for reflection_dir)."""

    def prepare(self, data) -> None:
        gen = torch.Generator().manual_seed(mix_int(self.ctx.seed + 0x5EF1))
        k = self.config.num_reflections
        if self.config.reflection_dir:
            imgs = load_image_dir(self.config.reflection_dir, data.shape, "refool: reflection_dir")
            pick = torch.randperm(len(imgs), generator=gen)[:k].sort().values
            self.reflections = imgs[pick]
            self.reflection_source = torch.empty(0, dtype=torch.long)
        else:
            y = data.y_train
            pool = torch.nonzero(y != self.ctx.target).flatten() if not self.ctx.all_to_all else torch.arange(len(y))
            pick = pool[torch.randperm(len(pool), generator=gen)[:k]].sort().values
            self.reflections = data.x_train[pick].float() / 255.0
            self.reflection_source = pick
        self.reflections = self.reflections.to(self.ctx.device)

    def state(self) -> dict[str, torch.Tensor]:
        if self.reflections is None:
            return {}
        return {"reflections": self.reflections.detach().cpu().contiguous(),
                "reflection_source": self.reflection_source.cpu()}

    def load_state(self, tensors: dict[str, torch.Tensor]) -> None:
        self.reflections = tensors["reflections"].float().to(self.ctx.device)
        self.reflection_source = tensors.get("reflection_source", torch.empty(0, dtype=torch.long)).cpu()

    def params(self, idx: torch.Tensor, train: bool) -> ReflectionParams:
        """Reflection parameters of samples idx of the train or test split."""
        if self.reflections is None:
            raise BdbError("refool: the reflection set is not built; call prepare(data) or load_state first")
        seed = mix_int(self.ctx.seed ^ (0x7A11 if train else 0x7E57))
        return draw_params(self.config, seed, idx, len(self.reflections))

    def apply_trigger(self, x: torch.Tensor, *, train: bool, idx: torch.Tensor | None = None) -> torch.Tensor:
        if idx is None:
            idx = torch.arange(len(x))
        p = self.params(idx.cpu(), train)
        refl = self.reflections.to(device=x.device, dtype=x.dtype)[p.which.to(x.device)]
        return add_reflection(x, refl, p.kind, p.sigma, p.shift, p.beta, p.alpha_t, self.config.gamma)


__all__ = ["Refool", "add_reflection", "shift_image", "draw_params", "sample_uniforms",
           "IN_FOCUS", "OUT_OF_FOCUS", "GHOST"]
