"""Image helpers for triggers: the reference's uint8 semantics (Pillow resize, truncating casts),
trigger image files and fixed-seed random patterns.

The reference benchmark prepares poisoned images as uint8 arrays: float results are cast with
truncation (numpy ``astype(uint8)``), and trigger images are resized with Pillow's bilinear filter
on uint8 (antialiased when shrinking). The functions here reproduce both on torch tensors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from bdcore.errors import BdbError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")

Quantization = Literal["truncate", "round", "none"]
QUANTIZATIONS: tuple[str, ...] = ("truncate", "round", "none")

_TRUNC_EPS = 1e-3
"""Values within this many grey levels below an integer count as that integer when truncating, so
that float round-off (k/255 * 255 = k - 1e-5) does not lose a level the exact arithmetic keeps."""


def quantize(x: torch.Tensor, mode: Quantization = "truncate") -> torch.Tensor:
    """Float images in [0, 1] as the reference stores them: cast to uint8 levels, back to [0, 1].

    truncate: floor(255 x), like numpy's astype(uint8) (the reference); round: nearest level;
    none: unchanged. Values are clipped to [0, 1] first. Returns a new float tensor.
    """
    if mode not in QUANTIZATIONS:
        raise BdbError(f"unknown quantization {mode!r}; use one of {', '.join(QUANTIZATIONS)}")
    if mode == "none":
        return x.clamp(0.0, 1.0)
    v = x.clamp(0.0, 1.0) * 255.0
    v = torch.floor(v + _TRUNC_EPS) if mode == "truncate" else torch.round(v)
    return v.clamp_(0.0, 255.0).div_(255.0)


def to_uint8(x: torch.Tensor, mode: Quantization = "truncate") -> torch.Tensor:
    """Float images in [0, 1] to uint8 levels with the given cast (round for 'none')."""
    v = x.clamp(0.0, 1.0) * 255.0
    v = torch.floor(v + _TRUNC_EPS) if mode == "truncate" else torch.round(v)
    return v.clamp_(0, 255).to(torch.uint8)


def resize_uint8(img: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize a uint8 image (C, H, W) to (h, w) with Pillow's bilinear filter, as the reference does.

    Pillow's bilinear filter is antialiased when shrinking (its support widens with the scale);
    each channel is resized as an 8-bit image, so the result is exactly Pillow's uint8 output.
    """
    from PIL import Image

    if img.dtype != torch.uint8 or img.dim() != 3:
        raise ValueError(f"resize_uint8 expects a uint8 (C, H, W) tensor, got {img.dtype} {tuple(img.shape)}")
    h, w = size
    if tuple(img.shape[1:]) == (h, w):
        return img.clone()
    arr = img.cpu().numpy()
    chans = [np.asarray(Image.fromarray(np.ascontiguousarray(a), mode="L").resize((w, h), Image.BILINEAR))
             for a in arr]
    return torch.from_numpy(np.stack(chans).copy())


def random_pattern(shape: tuple[int, int, int], seed: int) -> torch.Tensor:
    """Uniform random uint8 noise image (C, H, W) scaled to [0, 1], fixed by seed."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, shape, generator=gen, dtype=torch.uint8).float() / 255.0


def read_image(path: str | Path, channels: int, what: str = "image") -> torch.Tensor:
    """An image file as uint8 (C, H, W) with the data's channels (Pillow's L or RGB conversion)."""
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    if not p.is_file():
        raise BdbError(f"{what} {p} not found")
    try:
        with Image.open(p) as im:
            arr = np.asarray(im.convert("L" if channels == 1 else "RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as exc:
        raise BdbError(f"{what} {p} is not a readable image ({exc})") from None
    return torch.from_numpy(arr.copy()).reshape(arr.shape[0], arr.shape[1], -1).permute(2, 0, 1).contiguous()


def load_image(path: str | Path, shape: tuple[int, int, int], what: str = "image") -> torch.Tensor:
    """An image file converted to the data's channels and resized to (C, H, W) as the reference does
    (Pillow bilinear on uint8), returned in [0, 1].

    what: how the error message names the file (e.g. "blended: trigger_image").
    """
    c, h, w = shape
    return resize_uint8(read_image(path, c, what), (h, w)).float() / 255.0


def load_image_dir(path: str | Path, shape: tuple[int, int, int], what: str = "image directory") -> torch.Tensor:
    """Every image in a directory (sorted by name) as a (N, C, H, W) tensor in [0, 1]."""
    root = Path(path)
    if not root.is_dir():
        raise BdbError(f"{what} {root} is not a directory")
    files = sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise BdbError(f"{what} {root} holds no PNG/JPEG/BMP images")
    return torch.stack([load_image(f, shape, what) for f in files])


def gaussian_blur(x: torch.Tensor, sigma: float | torch.Tensor, *, truncate: float = 4.0, radius: int | None = None,
                  border: Literal["replicate", "reflect"] = "replicate") -> torch.Tensor:
    """Separable Gaussian blur of images (B, C, H, W), each channel on its own.

    The 1-D window is w_i proportional to exp(-i^2 / (2 sigma^2)) for abs(i) <= r, normalised to sum 1, with
    r = ceil(truncate * sigma) (scipy's rule; truncate 4 is scipy's default, 2 OpenCV-like windows) or the
    given `radius`. sigma may be one value or one per image (B,): each image then gets its own window and
    radius (zero weight beyond it). border: how the image is extended; 'reflect' needs the radius below the
    image's size and falls back to 'replicate' where it is not. The weights are computed in float64.
    sigma <= 0 (all of them) returns x unchanged.
    """
    b, c, h, w = x.shape
    s = torch.as_tensor(sigma, dtype=torch.float64).flatten().cpu()
    if s.numel() == 1:
        s = s.expand(max(b, 1))
    if b == 0 or bool((s <= 0).all()):
        return x
    s = s.clamp_min(1e-6)
    each = torch.full_like(s, float(radius)) if radius is not None else torch.ceil(truncate * s)
    r = int(each.max())
    if r == 0:
        return x
    t = torch.arange(-r, r + 1, dtype=torch.float64)
    g = torch.exp(-(t[None] ** 2) / (2 * s[:, None] ** 2))
    g = torch.where(t[None].abs() <= each[:, None], g, torch.zeros_like(g))
    g = (g / g.sum(1, keepdim=True)).to(device=x.device, dtype=x.dtype)  # (B, K)
    mode = "reflect" if border == "reflect" and r < min(h, w) else "replicate"
    if bool((g == g[:1]).all()):  # one window for every image: one filter over all channels
        y = x.reshape(b * c, 1, h, w)
        y = F.conv2d(F.pad(y, (r, r, 0, 0), mode=mode), g[0].view(1, 1, 1, -1))
        y = F.conv2d(F.pad(y, (0, 0, r, r), mode=mode), g[0].view(1, 1, -1, 1))
        return y.view(b, c, h, w)
    k = g.repeat_interleave(c, dim=0)  # (B*C, K): a window per image, repeated for its channels
    y = x.reshape(1, b * c, h, w)
    y = F.conv2d(F.pad(y, (r, r, 0, 0), mode=mode), k[:, None, None, :], groups=b * c)
    y = F.conv2d(F.pad(y, (0, 0, r, r), mode=mode), k[:, None, :, None], groups=b * c)
    return y.reshape(b, c, h, w)
