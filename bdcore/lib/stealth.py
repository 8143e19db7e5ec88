"""Stealthiness of a trigger: PSNR and SSIM between clean and poisoned images in [0, 1]."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def psnr(clean: torch.Tensor, poisoned: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Peak signal-to-noise ratio per image (dB, data range 1); inf where the images are equal."""
    mse = (clean - poisoned).pow(2).flatten(1).mean(1)
    return torch.where(mse > eps, 10 * torch.log10(1.0 / mse.clamp_min(eps)), torch.full_like(mse, float("inf")))


def _gaussian_window(size: int, sigma: float, channels: int, device: torch.device) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float64, device=device) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, size, size).contiguous()


def ssim(clean: torch.Tensor, poisoned: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Structural similarity per image (Wang et al., 2004): Gaussian window 11, sigma 1.5, K1 0.01,
    K2 0.03, data range 1, valid positions only, averaged over channels. Smaller images use the
    largest odd window that fits."""
    x, y = clean.double(), poisoned.double()
    c = x.shape[1]
    size = min(window, x.shape[-1], x.shape[-2])
    size -= (size + 1) % 2
    w = _gaussian_window(size, sigma, c, x.device)
    c1, c2 = 0.01**2, 0.03**2
    mu_x, mu_y = F.conv2d(x, w, groups=c), F.conv2d(y, w, groups=c)
    sxx = F.conv2d(x * x, w, groups=c) - mu_x**2
    syy = F.conv2d(y * y, w, groups=c) - mu_y**2
    sxy = F.conv2d(x * y, w, groups=c) - mu_x * mu_y
    s = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))
    return s.flatten(1).mean(1).float()


def stealth(clean: torch.Tensor, poisoned: torch.Tensor) -> dict[str, float | None]:
    """Mean PSNR (over images the trigger changed; None if it changed none) and mean SSIM."""
    p = psnr(clean, poisoned)
    finite = p[torch.isfinite(p)]
    return {
        "psnr": float(finite.mean()) if len(finite) else None,
        "ssim": float(ssim(clean, poisoned).mean()),
    }
