"""Trigger images for attacks: user image files and fixed-seed random patterns, as [0, 1] tensors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from bdcore.errors import BdbError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


def random_pattern(shape: tuple[int, int, int], seed: int) -> torch.Tensor:
    """Uniform random uint8 noise image (C, H, W) scaled to [0, 1], fixed by seed."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, shape, generator=gen, dtype=torch.uint8).float() / 255.0


def load_image(path: str | Path, shape: tuple[int, int, int], what: str = "image") -> torch.Tensor:
    """An image file converted to the data's channels (L or RGB) and resized (bilinear) to (C, H, W).

    what: how the error message names the file (e.g. "blended: trigger_image").
    """
    from PIL import Image, UnidentifiedImageError

    c, h, w = shape
    p = Path(path)
    if not p.is_file():
        raise BdbError(f"{what} {p} not found")
    try:
        with Image.open(p) as im:
            arr = np.asarray(im.convert("L" if c == 1 else "RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as exc:
        raise BdbError(f"{what} {p} is not a readable image ({exc})") from None
    img = torch.from_numpy(arr.copy()).reshape(arr.shape[0], arr.shape[1], -1).permute(2, 0, 1)
    img = F.interpolate(img[None].float() / 255.0, size=(h, w), mode="bilinear", align_corners=False)[0]
    return img.clamp(0, 1)


def load_image_dir(path: str | Path, shape: tuple[int, int, int], what: str = "image directory") -> torch.Tensor:
    """Every image in a directory (sorted by name) as a (N, C, H, W) tensor in [0, 1]."""
    root = Path(path)
    if not root.is_dir():
        raise BdbError(f"{what} {root} is not a directory")
    files = sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise BdbError(f"{what} {root} holds no PNG/JPEG/BMP images")
    return torch.stack([load_image(f, shape, what) for f in files])
