"""Blended: alpha-blend a trigger image over the whole input."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from bdcore.attack import Attack, AttackContext
from bdcore.errors import BdbError

from bdb_attack_blended.config import BlendedConfig


def random_pattern(shape: tuple[int, int, int], seed: int) -> torch.Tensor:
    """Uniform random uint8 noise image (C, H, W) scaled to [0, 1], fixed by seed."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, shape, generator=gen, dtype=torch.uint8).float() / 255.0


def image_pattern(path: str, shape: tuple[int, int, int]) -> torch.Tensor:
    """A user image, converted to the data's channels and resized (bilinear) to its size, in [0, 1]."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    c, h, w = shape
    p = Path(path)
    if not p.is_file():
        raise BdbError(f"blended: trigger_image {path} not found")
    try:
        with Image.open(p) as im:
            arr = np.asarray(im.convert("L" if c == 1 else "RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as exc:
        raise BdbError(f"blended: trigger_image {path} is not a readable image ({exc})") from None
    img = torch.from_numpy(arr.copy()).reshape(arr.shape[0], arr.shape[1], -1).permute(2, 0, 1)
    img = F.interpolate(img[None].float() / 255.0, size=(h, w), mode="bilinear", align_corners=False)[0]
    return img.clamp(0, 1)


class Blended(Attack):
    """x' = (1 - alpha) * x + alpha * t; alpha_train for poisoned training data, alpha_test at test."""

    def __init__(self, config: BlendedConfig, ctx: AttackContext) -> None:
        super().__init__(config, ctx)
        if config.trigger_image:
            pattern = image_pattern(config.trigger_image, ctx.shape)
        else:
            pattern = random_pattern(ctx.shape, config.pattern_seed)
        self.pattern = pattern.to(ctx.device)

    def apply_trigger(self, x: torch.Tensor, *, train: bool, idx: torch.Tensor | None = None) -> torch.Tensor:
        a = self.config.alpha_train if train else self.config.alpha_test
        return (1 - a) * x + a * self.pattern.to(device=x.device, dtype=x.dtype)
