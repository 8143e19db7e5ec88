"""A picture of a trigger: clean images, poisoned images and their amplified difference."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from bdcore.api.attack import Attack
from bdcore.data import ImageDataset
from bdcore.errors import BdbError
from bdcore.data.images import quantize


@torch.no_grad()
def preview_grid(attack: Attack, data: ImageDataset, n: int = 8, train: bool = False, min_side: int = 64) -> torch.Tensor:
    """A (3, H', W') image: row 1 clean, row 2 poisoned, row 3 |difference| scaled to full range.

    Poisoned images are cast to uint8 levels the way the run does (attack.ctx.quantize). Uses n
    test images, spread over the split, whose label the attack changes (train=False: test-time trigger)
    or n of the training set's non-target images with the training-time poison.
    """
    y = data.y_train if train else data.y_test
    x_all = data.x_train if train else data.x_test
    pool = torch.nonzero(attack.target_label(y) != y).flatten()
    if len(pool) == 0:
        raise BdbError("no images to preview")
    idx = pool[torch.linspace(0, len(pool) - 1, min(n, len(pool))).round().long()]  # spread over classes
    dev = attack.ctx.device
    x = x_all[idx].float().div(255).to(dev)
    xp = (attack.poison_x(x.clone(), idx.to(dev)) if train else attack.test_trigger(x.clone(), idx.to(dev))).clamp(0, 1)
    xp = quantize(xp, attack.ctx.quantize)  # the uint8 levels a run trains and tests on
    diff = (xp - x).abs()
    peak = diff.flatten(1).max(1).values.clamp_min(1e-8).view(-1, 1, 1, 1)
    diff = diff / peak
    rows = torch.cat([x, xp, diff]).cpu()
    if rows.shape[1] == 1:
        rows = rows.repeat(1, 3, 1, 1)
    side = rows.shape[-1]
    if side < min_side:
        scale = -(-min_side // side)
        rows = F.interpolate(rows, scale_factor=scale, mode="nearest")
    from torchvision.utils import make_grid

    return make_grid(rows, nrow=len(idx), padding=2, pad_value=1.0)


def png_bytes(img: torch.Tensor) -> bytes:
    """A (3, H, W) float image in [0, 1] encoded as PNG."""
    import io

    from PIL import Image

    arr = (img.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def check_png_path(path: str | Path) -> Path:
    """The --out of a picture (bdb preview, bdb analyze): a .png file name, else a one-line error,
    raised before any work (bdb writes PNG only, never a PNG under another suffix)."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise BdbError(f"--out must end in .png (bdb writes PNG images only), got {path.name}")
    return path


def save_png(img: torch.Tensor, path: str | Path) -> None:
    """Write a (3, H, W) float image in [0, 1] as PNG (atomically)."""
    path = check_png_path(path)
    if not path.parent.exists():
        raise BdbError(f"directory {path.parent} does not exist")
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(png_bytes(img))
    tmp.replace(path)
