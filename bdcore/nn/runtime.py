"""The process runtime: seeds, CPU threads, the device.

Shared by the harness, the executors and the analysis runner.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
from typing import Iterator

import numpy as np
import torch

from bdcore.errors import BdbError


def derive_seed(seed: int, purpose: str) -> int:
    """An independent, stable seed for one purpose (poison choice, init, data order, ...)."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{purpose}".encode()).digest()[:4], "little")


def seed_all(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def cpu_kernels() -> str:
    """The CPU kernel set torch dispatches to (e.g. AVX512, AVX2: fp32 training ends at other numbers under
    another; ATEN_CPU_CAPABILITY and ONEDNN_MAX_CPU_ISA cap it, see `./dev.sh test --isa`)."""
    import os

    isa = os.environ.get("ONEDNN_MAX_CPU_ISA")
    return torch.backends.cpu.get_cpu_capability() + (f" (oneDNN max {isa})" if isa else "")


@contextlib.contextmanager
def keep_threads() -> Iterator[None]:
    """Restore torch's CPU thread count after the block.

    Plugins call into libraries that change the process-wide OpenMP thread count (umap-learn's numba
    kernels set it to the number of cores): without this, every later run in the process would train
    with more threads than asked for, slower on a shared machine and with different numbers."""
    n = torch.get_num_threads()
    try:
        yield
    finally:
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)


def pick_device(name: str = "auto") -> torch.device:
    """'auto' means CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise BdbError(f"unknown device {name!r}; use auto, cpu or cuda[:N]") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise BdbError("CUDA was asked for but is not available; use --device cpu")
    return dev
