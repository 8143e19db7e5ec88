"""Batched augmentation on tensors (any device), one random draw per image from a seeded generator:
random crop with padding and horizontal flip (the standard recipe), and the stronger transformations
of contrastive learning and of the FCT metric (resized crop, colour jitter, grayscale, rotation).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def random_crop(x: torch.Tensor, pad: int, gen: torch.Generator) -> torch.Tensor:
    """Zero-pad by `pad` and crop back to size at a random offset per image."""
    if pad <= 0:
        return x
    n, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=gen, device=gen.device).to(x.device)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=gen, device=gen.device).to(x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device)[None, :])[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=x.device)[None, :])[:, None, None, :]
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chan = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, chan, rows, cols]


def random_hflip(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Flip each image left-right with probability 1/2."""
    flip = (torch.rand(x.shape[0], generator=gen, device=gen.device) < 0.5).to(x.device)
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def augment(x: torch.Tensor, gen: torch.Generator, hflip: bool) -> torch.Tensor:
    """The standard recipe: crop with padding of 1/8 of the side (4 at 32x32), then flip if allowed."""
    pad = max(1, round(x.shape[-1] / 8))
    x = random_crop(x, pad, gen)
    return random_hflip(x, gen) if hflip else x


def uniforms(n: int, k: int, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    """(n, k) uniforms in [0, 1) drawn from gen, on device."""
    return torch.rand(n, k, generator=gen, device=gen.device).to(device)


def affine_warp(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Resample x with per-image affine maps theta (N, 2, 3) from output to input coordinates in [-1, 1]."""
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def random_resized_crop(x: torch.Tensor, gen: torch.Generator, scale: tuple[float, float] = (0.2, 1.0),
                        ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> torch.Tensor:
    """Crop a random region of each image (area share in `scale`, aspect ratio in `ratio`, log-uniform)
    and resize it back to full size (bilinear)."""
    n = x.shape[0]
    u = uniforms(n, 4, gen, x.device)
    area = scale[0] + (scale[1] - scale[0]) * u[:, 0]
    r = torch.exp(math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * u[:, 1])
    w = torch.sqrt(area * r).clamp(max=1.0)
    h = torch.sqrt(area / r).clamp(max=1.0)
    theta = torch.zeros(n, 2, 3, device=x.device)
    theta[:, 0, 0], theta[:, 1, 1] = w, h
    theta[:, 0, 2] = (1 - w) * (2 * u[:, 2] - 1)
    theta[:, 1, 2] = (1 - h) * (2 * u[:, 3] - 1)
    return affine_warp(x, theta)


def _luminance(x: torch.Tensor) -> torch.Tensor:
    if x.shape[1] == 3:
        w = torch.tensor([0.299, 0.587, 0.114], device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        return (x * w).sum(1, keepdim=True)
    return x.mean(1, keepdim=True)


def color_jitter(x: torch.Tensor, gen: torch.Generator, brightness: float = 0.4, contrast: float = 0.4,
                 saturation: float = 0.4, p: float = 0.8) -> torch.Tensor:
    """With probability p per image: scale brightness, contrast (around the mean grey level) and
    saturation (colour images) by factors drawn uniformly from [1 - s, 1 + s], in that order."""
    n = x.shape[0]
    u = uniforms(n, 4, gen, x.device).view(n, 4, 1, 1, 1)
    y = (x * (1 + brightness * (2 * u[:, 0] - 1))).clamp(0, 1)
    mean = _luminance(y).mean((1, 2, 3), keepdim=True)
    y = ((y - mean) * (1 + contrast * (2 * u[:, 1] - 1)) + mean).clamp(0, 1)
    if x.shape[1] == 3:
        g = _luminance(y)
        y = ((y - g) * (1 + saturation * (2 * u[:, 2] - 1)) + g).clamp(0, 1)
    return torch.where(u[:, 3] < p, y, x)


def random_grayscale(x: torch.Tensor, gen: torch.Generator, p: float = 0.2) -> torch.Tensor:
    """Turn each colour image grey (luminance on every channel) with probability p; grey images pass."""
    if x.shape[1] != 3:
        return x
    u = uniforms(x.shape[0], 1, gen, x.device).view(-1, 1, 1, 1)
    return torch.where(u < p, _luminance(x).expand_as(x), x)


def simclr_augment(x: torch.Tensor, gen: torch.Generator, hflip: bool = True,
                   scale: tuple[float, float] = (0.2, 1.0)) -> torch.Tensor:
    """One SimCLR view per image: random resized crop, flip (if allowed), colour jitter 0.4 (p 0.8),
    grayscale (p 0.2)."""
    x = random_resized_crop(x, gen, scale)
    if hflip:
        x = random_hflip(x, gen)
    return random_grayscale(color_jitter(x, gen), gen)


def rotate_translate(x: torch.Tensor, gen: torch.Generator, degrees: float = 180.0,
                     translate: float = 0.2) -> torch.Tensor:
    """Rotate each image by a uniform angle in [-degrees, degrees], then shift it by a uniform
    fraction in [-translate, translate] of its size on each axis (bilinear, zero fill)."""
    n = x.shape[0]
    u = uniforms(n, 3, gen, x.device)
    a = math.radians(degrees) * (2 * u[:, 0] - 1)
    theta = torch.zeros(n, 2, 3, device=x.device)
    theta[:, 0, 0], theta[:, 0, 1] = torch.cos(a), -torch.sin(a)
    theta[:, 1, 0], theta[:, 1, 1] = torch.sin(a), torch.cos(a)
    theta[:, 0, 2] = 2 * translate * (2 * u[:, 1] - 1)  # normalised coordinates span 2 per image side
    theta[:, 1, 2] = 2 * translate * (2 * u[:, 2] - 1)
    return affine_warp(x, theta)
