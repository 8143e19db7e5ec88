"""WaNet: a fixed, smooth warp of the image is the trigger.

Warping field (paper): a random k x k x 2 control grid P in [-1, 1], normalised by its
mean absolute value, bicubically upsampled to H x W, scaled by s / (image size) and added to the
identity sampling grid, clamped to [-1, 1]; images are resampled with `grid_sample`
(bilinear, align_corners=True, so the identity grid reproduces the image exactly).
Training (paper): in each batch a share pratio is warped and relabelled to the target, a share
cross_ratio * pratio is warped with the grid plus per-sample random noise (in [-1, 1] / size) and
keeps its label ("noise mode"), the rest stays clean.
"""

from __future__ import annotations

import hashlib

import torch
import torch.nn.functional as F

from bdcore import Attack, AttackContext
from bdcore import StepInfo, TrainHook

from bdb_attack_wanet.config import WaNetConfig


def random_control_grid(k: int, seed: int) -> torch.Tensor:
    """Uniform random k x k x 2 control grid in [-1, 1], shape (1, 2, k, k), fixed by seed."""
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(1, 2, k, k, generator=gen) * 2 - 1


def identity_grid(height: int, width: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """The sampling grid that reproduces an image: shape (1, H, W, 2), last dim (x, y) in [-1, 1]."""
    ys = torch.linspace(-1, 1, height, device=device)
    xs = torch.linspace(-1, 1, width, device=device)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack((gx, gy), dim=-1)[None]


def warping_field(control: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Normalise the control grid by its mean absolute value and upsample it (bicubic) to H x W.

    Returns the field M of shape (1, H, W, 2) (x offset, y offset), before scaling by s / size.
    """
    p = control / control.abs().mean()
    up = F.interpolate(p, size=(height, width), mode="bicubic", align_corners=True)
    return up.permute(0, 2, 3, 1)


def warp_grid(control: torch.Tensor, height: int, width: int, s: float) -> torch.Tensor:
    """The backdoor sampling grid: clamp(identity + s * M / size, -1, 1), shape (1, H, W, 2)."""
    field = warping_field(control, height, width)
    size = torch.tensor([width, height], dtype=field.dtype, device=field.device)
    grid = identity_grid(height, width, field.device) + s * field / size
    return grid.clamp(-1, 1)


def warp(x: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Resample images (B, C, H, W) at grid (1 or B, H, W, 2): bilinear, align_corners=True."""
    g = grid.to(device=x.device, dtype=x.dtype)
    if g.shape[0] != x.shape[0]:
        g = g.expand(x.shape[0], -1, -1, -1)
    return F.grid_sample(x, g, mode="bilinear", padding_mode="zeros", align_corners=True)


def noise_grid(grid: torch.Tensor, n: int, gen: torch.Generator) -> torch.Tensor:
    """Noise mode: the backdoor grid plus per-sample uniform noise in [-1, 1] / size, clamped."""
    _, h, w, _ = grid.shape
    noise = torch.rand(n, h, w, 2, generator=gen, device=gen.device) * 2 - 1
    size = torch.tensor([w, h], dtype=grid.dtype)
    return (grid + (noise / size).to(device=grid.device, dtype=grid.dtype)).clamp(-1, 1)


def _seed_for(seed: int, k: int) -> int:
    return int.from_bytes(hashlib.sha256(f"wanet:{seed}:{k}".encode()).digest()[:4], "little")


class WaNetHook(TrainHook):
    """Warps the first pratio share of each batch (target label) and noise-warps the next share."""

    def __init__(self, attack: WaNet) -> None:
        self.attack = attack

    def on_batch(self, x: torch.Tensor, y: torch.Tensor, step: StepInfo) -> tuple[torch.Tensor, torch.Tensor]:
        a = self.attack
        bs = x.shape[0]
        n_bd = int(bs * a.ctx.pratio)
        n_cross = min(int(n_bd * a.config.cross_ratio), bs - n_bd)
        if n_bd == 0:
            return x, y
        x, y = x.clone(), y.clone()
        x[:n_bd] = warp(x[:n_bd], a.grid)
        y[:n_bd] = a.target_label(y[:n_bd])
        if n_cross:
            sl = slice(n_bd, n_bd + n_cross)
            x[sl] = warp(x[sl], noise_grid(a.grid, n_cross, step.gen))
        return x, y


class WaNet(Attack):
    """Training-controlled: batches are poisoned in the trainer's step; the test trigger is the fixed warp."""

    training_controlled = True

    def __init__(self, config: WaNetConfig, ctx: AttackContext) -> None:
        super().__init__(config, ctx)
        seed = config.field_seed if config.field_seed is not None else _seed_for(ctx.seed, config.k)
        self._set_control(random_control_grid(config.k, seed))

    def _set_control(self, control: torch.Tensor) -> None:
        _, h, w = self.ctx.shape
        self.control = control.float().cpu()
        self.grid = warp_grid(self.control, h, w, self.config.s).to(self.ctx.device)

    def apply_trigger(self, x: torch.Tensor, *, train: bool, idx: torch.Tensor | None = None) -> torch.Tensor:
        return warp(x, self.grid)

    def train_hook(self) -> TrainHook:
        return WaNetHook(self)

    def state(self) -> dict[str, torch.Tensor]:
        return {"control": self.control.contiguous(), "grid": self.grid.detach().cpu().contiguous()}

    def load_state(self, tensors: dict[str, torch.Tensor]) -> None:
        self._set_control(tensors["control"].cpu())
        if "grid" in tensors:
            self.grid = tensors["grid"].to(self.ctx.device)
