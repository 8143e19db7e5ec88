"""Deterministic per-sample randomness: uniforms that are a fixed function of (seed, index, stream).

A poisoned sample must get the same poison whatever batch it lands in and however often it is
drawn; hashing its index gives that without storing per-sample parameters.
"""

from __future__ import annotations

import torch

M32 = 0xFFFFFFFF


def mix_int(v: int) -> int:
    """32-bit integer hash of a Python int (the same mixing as `mix32`)."""
    v &= M32
    v ^= v >> 16
    v = (v * 0x45D9F3B) & M32
    v ^= v >> 16
    v = (v * 0x45D9F3B) & M32
    return v ^ (v >> 16)


def mix32(x: torch.Tensor) -> torch.Tensor:
    """32-bit integer hash of int64 tensors holding values in [0, 2^32) (no int64 overflow)."""
    x = x ^ (x >> 16)
    x = (x * 0x45D9F3B) & M32
    x = x ^ (x >> 16)
    x = (x * 0x45D9F3B) & M32
    return x ^ (x >> 16)


def sample_uniforms(seed: int, idx: torch.Tensor, streams: int) -> torch.Tensor:
    """Uniforms in [0, 1), float64, shape (len(idx), streams), a fixed function of (seed, index, stream)."""
    key = idx.long() & M32
    cols = []
    for s in range(streams):
        salt = mix_int(mix_int(seed) + 0x9E3779B9 * (s + 1))
        h = mix32((mix32((key + salt) & M32) + mix_int(salt)) & M32)
        cols.append(h.double() / 2.0**32)
    return torch.stack(cols, dim=1)
