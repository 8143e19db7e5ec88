"""The 15 image corruptions of ImageNet-C / CIFAR-10-C (Hendrycks & Dietterich, ICLR 2019) that TeCo uses,
on float image batches (B, C, H, W) in [0, 1], for any channel count (grey and colour alike), on any device.

Severities 1..5 take the CIFAR-10-C parameters (32x32 images; lengths scale with the image size where the
originals do). Every random draw comes from the given generator, so a corruption is reproducible. Where the
original needs something a tensor library does not have, a close equivalent is used and said so:
glass blur shuffles pixels by one random gather instead of sequential swaps; motion blur is a one-sided
Gaussian line kernel (ImageMagick's, which the original calls); fog is octave (1/f) noise instead of
diamond-square plasma; frost blends a synthetic ice texture (the original's frost photographs are not
shipped); snow follows the original's recipe with the kernel above.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

from bdcore import gaussian_blur as _blur

Corruption = Callable[[torch.Tensor, int, torch.Generator], torch.Tensor]


def _rand(gen: torch.Generator, *shape: int, like: torch.Tensor) -> torch.Tensor:
    return torch.rand(*shape, generator=gen).to(like.device, like.dtype)


def _randn(gen: torch.Generator, *shape: int, like: torch.Tensor) -> torch.Tensor:
    return torch.randn(*shape, generator=gen).to(like.device, like.dtype)


def _filter(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Each channel of x (B, C, H, W) filtered by kernel (k, k), or one kernel per image (B, k, k); reflect border."""
    b, c, h, w = x.shape
    k = kernel.shape[-1]
    pad = k // 2
    xp = F.pad(x, (pad, pad, pad, pad), mode="reflect") if pad < min(h, w) else F.pad(x, (pad,) * 4, mode="replicate")
    if kernel.dim() == 2:
        return F.conv2d(xp.reshape(b * c, 1, *xp.shape[2:]), kernel[None, None].to(x)).view(b, c, h, w)
    weight = kernel.to(x).repeat_interleave(c, 0)[:, None]  # (B * C, 1, k, k)
    return F.conv2d(xp.reshape(1, b * c, *xp.shape[2:]), weight, groups=b * c).view(b, c, h, w)


def gaussian_kernel(sigma: float, radius: int | None = None) -> torch.Tensor:
    """A normalised 2-D Gaussian kernel (2r+1, 2r+1), r = ceil(4 sigma) unless given (scipy's truncate 4)."""
    r = radius if radius is not None else max(1, math.ceil(4 * sigma))
    t = torch.arange(-r, r + 1, dtype=torch.float64)
    g = torch.exp(-t ** 2 / (2 * max(sigma, 1e-6) ** 2))
    k = g[:, None] * g[None, :]
    return (k / k.sum()).float()


def _clip(x: torch.Tensor) -> torch.Tensor:
    return x.clamp(0.0, 1.0)


def gaussian_noise(x: torch.Tensor, severity: int, gen: torch.Generator) -> torch.Tensor:
    c = [0.04, 0.06, 0.08, 0.09, 0.10][severity - 1]
    return _clip(x + c * _randn(gen, *x.shape, like=x))


def shot_noise(x: torch.Tensor, severity: int, gen: torch.Generator) -> torch.Tensor:
    c = [500, 250, 100, 75, 50][severity - 1]
    return _clip(torch.poisson((x * c).double().cpu(), generator=gen).to(x) / c)


def impulse_noise(x: torch.Tensor, severity: int, gen: torch.Generator) -> torch.Tensor:
    """Salt and pepper: a share c of the values set to 0 or 1 (half each), per channel as the original."""
    c = [0.01, 0.02, 0.03, 0.05, 0.07][severity - 1]
    u = _rand(gen, *x.shape, like=x)
    return torch.where(u < c / 2, torch.zeros_like(x), torch.where(u < c, torch.ones_like(x), x))


def defocus_blur(x: torch.Tensor, severity: int, gen: torch.Generator) -> torch.Tensor:
    """Convolution with a disk of the given radius, anti-aliased by a 3x3 Gaussian."""
    radius, alias = [(0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)][severity - 1]
    r = 8 if radius <= 8 else math.ceil(radius)
    t = torch.arange(-r, r + 1, dtype=torch.float32)
    disk = ((t[:, None] ** 2 + t[None, :] ** 2) <= radius ** 2).float()
    disk = F.conv2d(F.pad(disk[None, None], (1, 1, 1, 1), mode="reflect"), gaussian_kernel(alias, 1)[None, None])[0, 0]
    return _clip(_filter(x, disk / disk.sum()))


def glass_blur(x: torch.Tensor, severity: int, gen: torch.Generator) -> torch.Tensor:
    """Gaussian blur, local pixel shuffling (each pixel takes a random neighbour within max_delta), blur again."""
    sigma, delta, iterations = [(0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)][severity - 1]
    b, c, h, w = x.shape
    x = _blur(x, sigma, border="reflect")
    rows = torch.arange(h).view(1, h, 1)
    cols = torch.arange(w).view(1, 1, w)
    for _ in range(iterations):
        dy = torch.randint(-delta, delta, (b, h, w), generator=gen)
        dx = torch.randint(-delta, delta, (b, h, w), generator=gen)
        src = ((rows + dy).clamp(0, h - 1) * w + (cols + dx).clamp(0, w - 1)).view(b, 1, h * w).to(x.device)
        x = x.flatten(2).gather(2, src.expand(b, c, h * w)).view(b, c, h, w)
    return _clip(_blur(x, sigma, border="reflect"))


def _motion_kernels(b: int, radius: float, sigma: float, angles: torch.Tensor) -> torch.Tensor:
    """One-sided Gaussian line kernels (B, k, k): weight exp(-i^2 / 2 sigma^2) at i = 0..radius along each angle."""
    r = int(math.ceil(radius))
    k = 2 * r + 1
    kern = torch.zeros(b, k, k)
    i = torch.arange(r + 1, dtype=torch.float32)
    wts = torch.exp(-i ** 2 / (2 * sigma ** 2))
    rad = angles * math.pi / 180
    ys = (r + (i[None] * torch.sin(rad)[:, None]).round()).long().clamp(0, k - 1)
    xs = (r + (i[None] * torch.cos(rad)[:, None]).round()).long().clamp(0, k - 1)
    bi = torch.arange(b)[:, None].expand_as(ys)
    kern.index_put_((bi, ys, xs), wts.expand_as(ys).contiguous(), accumulate=True)
    return kern / kern.sum((1, 2), keepdim=True)


def motion_blur(x: torch.Tensor, severity: int, gen: torch.Generator) -> torch.Tensor:
    radius, sigma = [(10, 1), (10, 1.5), (10, 2), (10, 2.5), (12, 3)][severity - 1]
    radius = radius * x.shape[-1] / 32
    angles = torch.rand(len(x), generator=gen) * 90 - 45
    return _clip(_filter(x, _motion_kernels(len(x), radius, sigma, angles)))


def _zoom(x: torch.Tensor, z: float) -> torch.Tensor:
    """Centre zoom by z (> 1 enlarges), cropped back to the image size, bilinear."""
    theta = torch.tensor([[1 / z, 0, 0], [0, 1 / z, 0]], dtype=x.dtype, device=x.device).expand(len(x), 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def zoom_blur(x: torch.Tensor, severity: int, gen: torch.Generator) -> torch.Tensor:
    top = [1.06, 1.11, 1.16, 1.21, 1.26][severity - 1]
    zooms = [1 + 0.01 * i for i in range(round((top - 1) / 0.01))]
    out = x.clone()
    for z in zooms:
        out += _zoom(x, z)
    return _clip(out / (len(zooms) + 1))


def _grey(x: torch.Tensor) -> torch.Tensor:
    if x.shape[1] == 3:
        return (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])
    return x.mean(1, keepdim=True)


def snow(x: torch.Tensor, severity: int, gen: torch.Generator) -> torch.Tensor:
    """A thresholded, zoomed, motion-blurred noise layer of flakes added (and mirrored) over a whitened image."""
    loc, scale, zoom, thr, radius, sigma, keep = [
        (0.1, 0.2, 1, 0.6, 8, 3, 0.95), (0.1, 0.2, 1, 0.5, 10, 4, 0.9), (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
        (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85), (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8)][severity - 1]
    b, _, h, w = x.shape
    layer = loc + scale * _randn(gen, b, 1, h, w, like=x)
    layer = _zoom(layer, zoom)
    layer = torch.where(layer < thr, torch.zeros_like(layer), layer)
    angles = torch.rand(b, generator=gen) * 90 - 135
    layer = _clip(_filter(_clip(layer), _motion_kernels(b, radius * w / 32, sigma, angles)))
    x = keep * x + (1 - keep) * torch.maximum(x, _grey(x) * 1.5 + 0.5)
    return _clip(x + layer + layer.flip(2, 3))


def _fractal(b: int, size: int, decay: float, gen: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    """Octave noise (B, 1, size, size) in [0, 1]: uniform grids of 2, 4, ... cells upsampled, octave i weighted decay^-i."""
    out = torch.zeros(b, 1, size, size, device=like.device, dtype=like.dtype)
    n, amp = 2, 1.0
    while n <= 2 * size:
        g = _rand(gen, b, 1, n, n, like=like) * 2 - 1
        out += amp * F.interpolate(g, size=(size, size), mode="bilinear", align_corners=False)
        n, amp = n * 2, amp / decay
    lo = out.flatten(1).amin(1).view(b, 1, 1, 1)
    hi = out.flatten(1).amax(1).view(b, 1, 1, 1)
    return (out - lo) / (hi - lo).clamp_min(1e-12)


def fog(x: torch.Tensor, severity: int, gen: torch.Generator) -> torch.Tensor:
    c, decay = [(0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)][severity - 1]
    b, _, h, w = x.shape
    peak = x.flatten(1).amax(1).view(b, 1, 1, 1)
    x = x + c * _fractal(b, max(h, w), decay, gen, x)[..., :h, :w]
    return _clip(x * peak / (peak + c))


def frost(x: torch.Tensor, severity: int, gen: torch.Generator) -> torch.Tensor:
    """x * a + b * ice, the ice a synthetic texture: sparse bright crystals blurred over a grey haze."""
    a, bw = [(1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)][severity - 1]
    n, _, h, w = x.shape
    crystals = (_rand(gen, n, 1, h, w, like=x) > 0.85).to(x)
    ice = 0.35 * _fractal(n, max(h, w), 2, gen, x)[..., :h, :w] + 0.65 * _clip(2 * _blur(crystals, 0.7, border="reflect"))
    return _clip(a * x + bw * ice)


def brightness(x: torch.Tensor, severity: int, gen: torch.Generator) -> torch.Tensor:
    """HSV value + c: colours keep hue and saturation (scaled by the new value), black becomes grey c."""
    c = [0.05, 0.1, 0.15, 0.2, 0.3][severity - 1]
    v = x.amax(1, keepdim=True)
    nv = (v + c).clamp(max=1.0)
    return torch.where(v > 0, x * nv / v.clamp_min(1e-12), nv.expand_as(x))


def contrast(x: torch.Tensor, severity: int, gen: torch.Generator) -> torch.Tensor:
    c = [0.75, 0.5, 0.4, 0.3, 0.15][severity - 1]
    means = x.mean((2, 3), keepdim=True)
    return _clip((x - means) * c + means)


def elastic_transform(x: torch.Tensor, severity: int, gen: torch.Generator) -> torch.Tensor:
    """A random affine warp (three points moved by up to c2 * size) plus a smoothed random displacement field."""
    b, _, h, w = x.shape
    alpha, sigma, affine = [(0, 0, 0.08), (0.05, 0.2, 0.07), (0.08, 0.06, 0.06), (0.1, 0.04, 0.05),
                            (0.1, 0.03, 0.03)][severity - 1]
    size = float(min(h, w))
    alpha, sigma, affine = alpha * size, sigma * size, affine * size
    # affine part: in normalised coordinates, a random perturbation of the identity by three moved points
    sq = min(h, w) // 3
    cy, cx = h // 2, w // 2
    p1 = torch.tensor([[cx + sq, cy + sq], [cx + sq, cy - sq], [cx - sq, cy - sq]], dtype=torch.float64)
    p2 = p1 + (torch.rand(b, 3, 2, generator=gen, dtype=torch.float64) * 2 - 1) * affine
    ones = torch.ones(3, 1, dtype=torch.float64)
    src = torch.cat([p1, ones], 1)                                   # (3, 3)
    mats = torch.linalg.solve(src.expand(b, 3, 3), p2)               # (B, 3, 2): p2 = [p1 1] @ M
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    pix = torch.stack([xs, ys, torch.ones_like(xs)], -1).view(1, h * w, 3)
    # the output pixel p takes the input at the inverse map: solve for it with the inverse affine
    full = torch.cat([mats, torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64).view(1, 3, 1).expand(b, 3, 1)], 2)
    inv = torch.linalg.inv(full)                                      # (B, 3, 3)
    srcpix = (pix @ inv)[..., :2].view(b, h, w, 2)
    if alpha > 0 and sigma > 0:
        field = torch.rand(b, 2, h, w, generator=gen, dtype=torch.float64) * 2 - 1
        field = _blur(field.float(), sigma, border="reflect").double() * alpha
        srcpix = srcpix + field.permute(0, 2, 3, 1)
    grid = torch.stack([(srcpix[..., 0] + 0.5) / w * 2 - 1, (srcpix[..., 1] + 0.5) / h * 2 - 1], -1)
    return _clip(F.grid_sample(x, grid.to(x), mode="bilinear", padding_mode="reflection", align_corners=False))


def pixelate(x: torch.Tensor, severity: int, gen: torch.Generator) -> torch.Tensor:
    c = [0.95, 0.9, 0.85, 0.75, 0.65][severity - 1]
    h, w = x.shape[-2:]
    small = F.interpolate(x, size=(max(1, int(h * c)), max(1, int(w * c))), mode="area")
    return F.interpolate(small, size=(h, w), mode="nearest")


def jpeg_compression(x: torch.Tensor, severity: int, gen: torch.Generator) -> torch.Tensor:
    """Pillow's JPEG round trip at the given quality (grey images as grey JPEGs)."""
    import io

    import numpy as np
    from PIL import Image

    quality = [80, 65, 58, 50, 40][severity - 1]
    u8 = (x * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    out = []
    for img in u8:
        buf = io.BytesIO()
        Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img).save(buf, format="JPEG", quality=quality)
        dec = np.asarray(Image.open(io.BytesIO(buf.getvalue())))
        out.append(dec.reshape(img.shape))
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).to(x.device, x.dtype).div(255.0)


CORRUPTIONS: dict[str, Corruption] = {
    "gaussian_noise": gaussian_noise, "shot_noise": shot_noise, "impulse_noise": impulse_noise,
    "defocus_blur": defocus_blur, "glass_blur": glass_blur, "motion_blur": motion_blur, "zoom_blur": zoom_blur,
    "snow": snow, "frost": frost, "fog": fog, "brightness": brightness, "contrast": contrast,
    "elastic_transform": elastic_transform, "pixelate": pixelate, "jpeg_compression": jpeg_compression,
}
"""TeCo's 15 corruptions, in the reference's order."""
