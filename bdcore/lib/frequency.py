"""Frequency-domain tools shared by frequency-trigger attacks: orthonormal DCT and YUV colour.

Everything is torch only, vectorised over any leading dimensions, and runs on the device and in
the floating dtype of its input.

DCT conventions: the orthonormal DCT-II of length N is the matrix

    C[k, n] = a_k * cos(pi * (2n + 1) * k / (2N)),   a_0 = sqrt(1/N),  a_k = sqrt(2/N) (k > 0),

so `C @ x` is the DCT-II of x and `C.T @ X` its inverse (the orthonormal DCT-III). The 2-D
transform of an image block B is `C_h @ B @ C_w.T` (the same convention as OpenCV's `cv2.dct`
and SciPy's `dctn(norm="ortho")`). Being linear and orthonormal, adding `m` to one coefficient
adds `m` times that basis image to the pixels, on whatever intensity scale the pixels use.

Colour spaces: the spectral trigger works in one of two BT.601 spaces, as the reference does.

"yuv" (CTRL; kornia's conversion in the reference), analogue YUV on float pixels:

    Y =  0.299 R + 0.587 G + 0.114 B
    U = -0.14713 R - 0.28886 G + 0.436 B
    V =  0.615 R - 0.51499 G - 0.10001 B

and the exact matrix inverse back to RGB. Y lies in [0, 1] for RGB in [0, 1]; U and V are signed.

"ycrcb" (FTrojan; OpenCV's cvtColor on uint8 in the reference), digital YCrCb with OpenCV's 14-bit
fixed-point coefficients and rounding, offset 128 on Cr and Cb, saturated to uint8:

    Y  = (4899 R + 9617 G + 1868 B + 2^13) >> 14
    Cr = ((R - Y) * 11682 + 128 * 2^14 + 2^13) >> 14
    Cb = ((B - Y) *  9241 + 128 * 2^14 + 2^13) >> 14

and its inverse R = Y + ((Cr-128) 22987 + 2^13) >> 14, G = Y + ((Cb-128)(-5636) + (Cr-128)(-11698)
+ 2^13) >> 14, B = Y + ((Cb-128) 29049 + 2^13) >> 14, saturated. The float DCT-domain result is
truncated to uint8 before the inverse, as numpy's astype(uint8) does in the reference (values out
of range are clipped, where the reference lets them wrap around: a documented reference bug).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import torch

RGB_TO_YUV = (
    (0.299, 0.587, 0.114),
    (-0.14713, -0.28886, 0.436),
    (0.615, -0.51499, -0.10001),
)
"""Rows Y, U, V of the BT.601 analogue YUV transform, applied to (R, G, B)."""


@lru_cache(maxsize=64)
def _dct_matrix_cached(n: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    k = torch.arange(n, dtype=torch.float64)[:, None]
    i = torch.arange(n, dtype=torch.float64)[None, :]
    c = torch.cos(torch.pi * (2 * i + 1) * k / (2 * n)) * (2.0 / n) ** 0.5
    c[0] = (1.0 / n) ** 0.5
    return c.to(device=device, dtype=dtype)


def dct_matrix(n: int, *, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> torch.Tensor:
    """The orthonormal DCT-II matrix C (n, n): row k is basis function k; C.T is its inverse."""
    if n < 1:
        raise ValueError(f"DCT length must be positive, got {n}")
    return _dct_matrix_cached(int(n), dtype, torch.device(device or "cpu"))


def _like(n: int, x: torch.Tensor) -> torch.Tensor:
    dtype = x.dtype if x.is_floating_point() else torch.float32
    return dct_matrix(n, dtype=dtype, device=x.device)


def dct2(x: torch.Tensor) -> torch.Tensor:
    """Orthonormal 2-D DCT-II over the last two dimensions of x (..., H, W)."""
    ch, cw = _like(x.shape[-2], x), _like(x.shape[-1], x)
    return ch @ x @ cw.T


def idct2(c: torch.Tensor) -> torch.Tensor:
    """Inverse of `dct2` (orthonormal 2-D DCT-III) over the last two dimensions."""
    ch, cw = _like(c.shape[-2], c), _like(c.shape[-1], c)
    return ch.T @ c @ cw


def _blocks(x: torch.Tensor, window: tuple[int, int]) -> torch.Tensor:
    bh, bw = window
    *lead, h, w = x.shape
    if h % bh or w % bw:
        raise ValueError(f"block DCT: size {h}x{w} is not a multiple of the window {bh}x{bw}")
    # (..., nh, bh, nw, bw) -> (..., nh, nw, bh, bw)
    return x.reshape(*lead, h // bh, bh, w // bw, bw).transpose(-3, -2)


def _unblocks(xb: torch.Tensor) -> torch.Tensor:
    *lead, nh, nw, bh, bw = xb.shape
    return xb.transpose(-3, -2).reshape(*lead, nh * bh, nw * bw)


def block_dct2(x: torch.Tensor, window: int | tuple[int, int]) -> torch.Tensor:
    """Blockwise orthonormal 2-D DCT (JPEG layout) over the last two dimensions.

    The image is tiled into non-overlapping windows (bh, bw), H and W being multiples of them; each
    window is replaced by its DCT coefficients, so coefficient (u, v) of block (i, j) sits at
    pixel (i*bh + u, j*bw + v).
    """
    win = (window, window) if isinstance(window, int) else tuple(window)
    return _unblocks(dct2(_blocks(x, win)))


def block_idct2(c: torch.Tensor, window: int | tuple[int, int]) -> torch.Tensor:
    """Inverse of `block_dct2` with the same window."""
    win = (window, window) if isinstance(window, int) else tuple(window)
    return _unblocks(idct2(_blocks(c, win)))


def fit_window(height: int, width: int, window: int) -> tuple[int, int]:
    """The DCT window actually used on an image: `window`, cut to the image's side where smaller."""
    return min(window, height), min(window, width)


def scale_position(pos: int, window: int, size: int) -> int:
    """Map a frequency index of a length-`window` DCT onto a length-`size` DCT (size <= window).

    Basis function k of a length-N DCT oscillates at k / (2N) cycles per pixel; the returned
    index floor(pos * size / window) keeps that spatial frequency (rounded down), so the last
    index maps to the last index (31 of 32 -> 27 of 28 -> 7 of 8) and 15 of 32 to 13 of 28 and
    3 of 8. With size == window the index is unchanged.
    """
    if not 0 <= pos < window:
        raise ValueError(f"frequency index {pos} is outside a window of {window}")
    return (pos * size) // window


def add_block_dct(
    x: torch.Tensor,
    positions: Sequence[tuple[int, int]],
    magnitude: float,
    window: int,
) -> torch.Tensor:
    """Add `magnitude` to the DCT coefficients at `positions` of every window of x (..., H, W).

    `positions` are (row, column) frequency indices of a `window` x `window` DCT. Images at least
    as large as the window are tiled into full windows from the top-left corner (rows/columns
    beyond the last full window are left as they are); a side smaller than the window becomes one
    window of that side, with the positions mapped by `scale_position`. The result is
    idct(dct(x) + magnitude * E) per window, E the indicator of the positions; `magnitude` is on
    the intensity scale of x. Returns a new tensor.
    """
    h, w = x.shape[-2:]
    bh, bw = fit_window(h, w, window)
    hh, ww = (h // bh) * bh, (w // bw) * bw
    rows = torch.tensor([scale_position(p, window, bh) for p, _ in positions], device=x.device)
    cols = torch.tensor([scale_position(q, window, bw) for _, q in positions], device=x.device)
    out = x.clone()
    coeffs = _blocks(x[..., :hh, :ww], (bh, bw))
    coeffs = dct2(coeffs)
    bump = torch.zeros(bh, bw, dtype=coeffs.dtype, device=x.device)
    bump.index_put_((rows, cols), torch.ones(len(positions), dtype=coeffs.dtype, device=x.device), accumulate=True)
    out[..., :hh, :ww] = _unblocks(idct2(coeffs + magnitude * bump))
    return out


@lru_cache(maxsize=16)
def _yuv_matrices(dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    fwd = torch.tensor(RGB_TO_YUV, dtype=torch.float64)
    inv = torch.linalg.inv(fwd)
    return fwd.to(device=device, dtype=dtype), inv.to(device=device, dtype=dtype)


def _mix(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    if x.dim() < 3 or x.shape[-3] != 3:
        raise ValueError(f"expected 3 colour channels at dim -3, got shape {tuple(x.shape)}")
    return torch.einsum("oc,...chw->...ohw", m, x)


def rgb_to_yuv(x: torch.Tensor) -> torch.Tensor:
    """RGB (..., 3, H, W) -> YUV (BT.601 analogue), same shape, device and dtype."""
    fwd, _ = _yuv_matrices(x.dtype, x.device)
    return _mix(x, fwd)


def yuv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """YUV (..., 3, H, W) -> RGB, the exact inverse of `rgb_to_yuv`."""
    _, inv = _yuv_matrices(x.dtype, x.device)
    return _mix(x, inv)


_SHIFT = 14
_HALF = 1 << (_SHIFT - 1)
_R2Y, _G2Y, _B2Y, _YCRI, _YCBI = 4899, 9617, 1868, 11682, 9241
_CR2RI, _CR2GI, _CB2GI, _CB2BI = 22987, -11698, -5636, 29049


def _descale(v: torch.Tensor) -> torch.Tensor:
    return (v + _HALF) >> _SHIFT  # arithmetic shift: floor division, as OpenCV's CV_DESCALE


def rgb_to_ycrcb_u8(x: torch.Tensor) -> torch.Tensor:
    """uint8-valued RGB (..., 3, H, W), any integer dtype -> YCrCb levels (int32), OpenCV's fixed point."""
    r, g, b = (x[..., i, :, :].to(torch.int32) for i in range(3))
    y = _descale(r * _R2Y + g * _G2Y + b * _B2Y)
    cr = _descale((r - y) * _YCRI + (128 << _SHIFT))
    cb = _descale((b - y) * _YCBI + (128 << _SHIFT))
    return torch.stack([y, cr, cb], dim=-3).clamp_(0, 255)


def ycrcb_to_rgb_u8(x: torch.Tensor) -> torch.Tensor:
    """YCrCb levels (..., 3, H, W) -> RGB levels (int32), OpenCV's fixed-point inverse, saturated."""
    y, cr, cb = (x[..., i, :, :].to(torch.int32) for i in range(3))
    cr, cb = cr - 128, cb - 128
    r = y + _descale(cr * _CR2RI)
    g = y + _descale(cb * _CB2GI + cr * _CR2GI)
    b = y + _descale(cb * _CB2BI)
    return torch.stack([r, g, b], dim=-3).clamp_(0, 255)


__all__ = [
    "RGB_TO_YUV", "dct_matrix", "dct2", "idct2", "block_dct2", "block_idct2", "fit_window", "scale_position",
    "add_block_dct", "rgb_to_yuv", "yuv_to_rgb", "rgb_to_ycrcb_u8", "ycrcb_to_rgb_u8", "spectral_trigger",
]

COLOR_SPACES = ("yuv", "ycrcb")


def spectral_trigger(
    x: torch.Tensor,
    magnitude: float,
    positions: Sequence[tuple[int, int]],
    window: int,
    channels: Sequence[int] = (1, 2),
    color_space: str = "yuv",
) -> torch.Tensor:
    """A spectral trigger (FTrojan, CTRL) on images (B, C, H, W) in [0, 1], C = 3 (RGB) or 1.

    RGB: convert to the colour space; in each chosen channel (default 1 and 2: U and V, or Cr and
    Cb) add `magnitude` at the given DCT positions of every window x window block; invert; back to
    RGB; clip to [0, 1]. One channel: the same on the image itself (its luminance). `magnitude` is
    on the papers' 0-255 pixel scale.

    color_space "yuv": float arithmetic throughout (CTRL). "ycrcb": the reference's uint8 pipeline
    (FTrojan): the image's uint8 levels go through OpenCV's YCrCb, the DCT-domain result is
    truncated to uint8, and OpenCV's inverse gives uint8 RGB (see the module docstring).
    """
    if color_space not in COLOR_SPACES:
        raise ValueError(f"unknown colour space {color_space!r}; use one of {', '.join(COLOR_SPACES)}")
    c = x.shape[-3]
    if c not in (1, 3):
        raise ValueError(f"spectral trigger: images need 1 or 3 channels, got {c}")
    ch = list(channels) if c == 3 else [0]
    if color_space == "yuv":
        m = magnitude / 255.0
        if c == 1:
            return add_block_dct(x, positions, m, window).clamp(0.0, 1.0)
        yuv = rgb_to_yuv(x)
        yuv[:, ch] = add_block_dct(yuv[:, ch], positions, m, window)
        return yuv_to_rgb(yuv).clamp(0.0, 1.0)
    levels = torch.round(x.clamp(0, 1) * 255.0).to(torch.int32)
    planes = rgb_to_ycrcb_u8(levels) if c == 3 else levels
    work = planes.to(torch.float64)
    work[:, ch] = add_block_dct(work[:, ch], positions, float(magnitude), window)
    planes = torch.floor(work.clamp(0.0, 255.0)).to(torch.int32)  # astype(uint8): truncation
    out = ycrcb_to_rgb_u8(planes) if c == 3 else planes
    return out.to(x.dtype) / 255.0
