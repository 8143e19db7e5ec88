"""SIG: a horizontal sinusoidal signal added to target-class images whose labels are kept."""

from __future__ import annotations

import math

import torch

from bdcore import Attack, AttackContext

from bdb_attack_sig.config import SIGConfig


def sinusoid(width: int, delta: float, frequency: float, *, device: torch.device | str | None = None,
             dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The signal v(j) = delta * sin(2 pi j f / W) for columns j = 0 .. W-1, shape (W,), delta in [0, 1] units."""
    j = torch.arange(width, device=device, dtype=torch.float64)
    return (delta * torch.sin(2 * math.pi * j * frequency / width)).to(dtype)


def sig_trigger(x: torch.Tensor, delta: float, frequency: float) -> torch.Tensor:
    """x + v added to every row and channel of images (B, C, H, W) in [0, 1], clipped to [0, 1].

    delta is on the [0, 1] scale (the paper's delta / 255).
    """
    v = sinusoid(x.shape[-1], delta, frequency, device=x.device, dtype=x.dtype)
    return (x + v).clamp(0.0, 1.0)


class SIG(Attack):
    """Clean-label: poison only target-class training images and keep their labels (Barni et al.)."""

    clean_label = True

    def __init__(self, config: SIGConfig, ctx: AttackContext) -> None:
        super().__init__(config, ctx)
        self.delta = config.delta / 255.0
        self.delta_test = (config.delta_test if config.delta_test is not None else config.delta) / 255.0

    def apply_trigger(self, x: torch.Tensor, *, train: bool, idx: torch.Tensor | None = None) -> torch.Tensor:
        return sig_trigger(x, self.delta if train else self.delta_test, self.config.frequency)
