"""Content-addressed cache of resources that plugins build (surrogates, patterns, generators)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors.torch import load_file, save_file

from bdcore.config import config_hash


class ArtifactCache:
    """Tensors built once per content key and stored as safetensors under `root`."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    def path(self, name: str, key: dict[str, Any]) -> Path:
        return self.root / f"{name}-{config_hash(key, 16)}.safetensors"

    def get_or_build(
        self, name: str, key: dict[str, Any], build: Callable[[], dict[str, torch.Tensor]]
    ) -> dict[str, torch.Tensor]:
        """Load the artifact for key, or build, store (atomically) and return it."""
        path = self.path(name, key)
        if path.is_file():
            try:
                return load_file(str(path))
            except Exception:
                path.unlink(missing_ok=True)  # corrupt: rebuild
        tensors = {k: v.detach().cpu().contiguous() for k, v in build().items()}
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.root, suffix=".part")
        os.close(fd)
        try:
            save_file(tensors, tmp)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return tensors
