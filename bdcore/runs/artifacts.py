"""Content-addressed cache of resources that plugins build (surrogates, patterns, generators)."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors.torch import load_file, save_file

from bdcore.config import config_hash


class ArtifactCache:
    """Tensors built once per content key and stored as safetensors under `root`.

    Every lookup is logged in `used` (name, file, whether it was built now, seconds), which the
    harness saves in the run's meta.json so that a run says which artifacts it used.
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self.used: list[dict[str, Any]] = []

    def path(self, name: str, key: dict[str, Any]) -> Path:
        return self.root / f"{name}-{config_hash(key, 16)}.safetensors"

    def get_or_build(
        self, name: str, key: dict[str, Any], build: Callable[[], dict[str, torch.Tensor]]
    ) -> dict[str, torch.Tensor]:
        """Load the artifact for key, or build, store (atomically) and return it.

        Two processes asking for the same artifact (grid workers, test workers) build it once: the
        second waits on a lock file next to it, then loads what the first stored.
        """
        path = self.path(name, key)
        loaded = self._load(name, path)
        if loaded is not None:
            return loaded
        from filelock import FileLock

        self.root.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path.with_suffix(".lock")), timeout=-1):
            loaded = self._load(name, path)
            if loaded is not None:
                return loaded
            return self._build(name, path, build)

    def _load(self, name: str, path: Path) -> dict[str, torch.Tensor] | None:
        if path.is_file():
            try:
                tensors = load_file(str(path))
                self.used.append({"name": name, "file": path.name, "built": False})
                return tensors
            except Exception:
                path.unlink(missing_ok=True)  # corrupt: rebuild
        return None

    def _build(self, name: str, path: Path, build: Callable[[], dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        t0 = time.perf_counter()
        tensors = {k: v.detach().cpu().contiguous() for k, v in build().items()}
        self.used.append({"name": name, "file": path.name, "built": True,
                          "seconds": round(time.perf_counter() - t0, 3)})
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
