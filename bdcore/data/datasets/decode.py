"""Decoding image files (PPM, JPEG, PNG, ...) into one uint8 (N, C, H, W) array with Pillow."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np

from bdcore.errors import BdbError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".ppm", ".pgm", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def _decode_one(path: Path, size: int | None, mode: str, dataset: str,
                expect: tuple[int, int] | None) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            if expect is not None and im.size != expect:
                raise BdbError(f"{dataset}: {path} is {im.size[0]}x{im.size[1]}, its annotation says "
                               f"{expect[0]}x{expect[1]}; replace it with the official file")
            im = im.convert(mode)
            if size is not None and im.size != (size, size):
                # Pillow's bilinear filter (antialiased when shrinking), as torchvision's Resize on PIL images
                im = im.resize((size, size), Image.BILINEAR)
            arr = np.asarray(im, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise BdbError(f"{dataset}: {path} is not a readable image or is truncated ({exc}); "
                       "replace it with the official file") from None
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def decode_images(paths: Sequence[Path], size: int | None, mode: str, dataset: str,
                  expect_sizes: Sequence[tuple[int, int]] | None = None, shape: tuple[int, int] | None = None,
                  workers: int | None = None) -> np.ndarray:
    """Images as uint8 (N, C, H, W): converted to `mode` ('RGB' or 'L') and resized to size x size
    (bilinear) when size is given; otherwise every image must have `shape` (H, W).

    expect_sizes: the (width, height) each file's annotation states, checked before decoding.
    Decoding runs on a thread pool (Pillow releases the GIL while decoding).
    """
    c = 1 if mode == "L" else 3
    h, w = (size, size) if size is not None else shape
    out = np.empty((len(paths), c, h, w), dtype=np.uint8)

    def work(i: int) -> None:
        arr = _decode_one(paths[i], size, mode, dataset, expect_sizes[i] if expect_sizes is not None else None)
        if arr.shape != (c, h, w):
            raise BdbError(f"{dataset}: {paths[i]} is {arr.shape[2]}x{arr.shape[1]}, expected {w}x{h}; "
                           "replace it with the official file")
        out[i] = arr

    n = workers or min(8, os.cpu_count() or 1)
    if n <= 1 or len(paths) < 64:
        for i in range(len(paths)):
            work(i)
    else:
        with ThreadPoolExecutor(n) as pool:
            list(pool.map(work, range(len(paths))))
    return out
