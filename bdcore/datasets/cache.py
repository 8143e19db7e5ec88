"""The decoded-dataset cache: uint8 arrays in one safetensors file, keyed by the sources' fingerprint.

Decoding thousands of PPM/JPEG/PNG files (or gunzipping idx files) happens once; later loads read
`<root>/.bdb-cache/<dataset>-<key>.safetensors` (override the folder with $BDB_DATA_CACHE). The key
hashes every source file's relative path, size and mtime plus the loader's own parameters and
format version, so a changed, added or removed file re-decodes. Safetensors holds only tensors and
strings: nothing is unpickled. An unwritable cache folder only costs the speed-up.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch

CACHE_DIR = ".bdb-cache"


def fingerprint(base: Path, files: Iterable[Path], params: dict) -> str:
    """A 20-hex-digit key over the files' relative paths, sizes and mtimes and the loader's params."""
    h = hashlib.sha256(json.dumps(params, sort_keys=True).encode())
    for f in sorted(files):
        st = f.stat()
        rel = os.path.relpath(f, base)
        h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:20]


def cache_dir(base: Path) -> Path:
    """Where decoded datasets are cached: $BDB_DATA_CACHE or <data folder>/.bdb-cache."""
    env = os.environ.get("BDB_DATA_CACHE")
    return Path(env) if env else base / CACHE_DIR


def cached(name: str, base: Path, files: Iterable[Path], params: dict,
           decode: Callable[[], tuple[dict[str, np.ndarray], dict]]) -> tuple[dict[str, torch.Tensor], dict, Path | None]:
    """(tensors, meta, cache file or None): read from the cache when the fingerprint matches, else decode and store.

    decode() returns numpy arrays and a JSON-able dict of metadata (e.g. class names).
    """
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file, save_file

    key = fingerprint(base, files, params)
    path = cache_dir(base) / f"{name}-{key}.safetensors"
    if path.is_file():
        try:
            with safe_open(str(path), framework="pt") as fh:
                meta = json.loads((fh.metadata() or {}).get("bdb", "{}"))
            arrays = load_file(str(path))
            if meta.get("key") == key:
                return arrays, meta.get("meta", {}), path
        except (SafetensorError, OSError, ValueError):
            pass  # a damaged cache file is rebuilt below
    decoded, meta = decode()
    arrays = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in decoded.items()}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        os.close(fd)
        save_file(arrays, tmp,
                  metadata={"bdb": json.dumps({"key": key, "meta": meta})})
        os.replace(tmp, path)
        if not os.environ.get("BDB_DATA_CACHE"):  # a per-root folder: older versions of this dataset are stale
            for old in path.parent.glob(f"{name}-*.safetensors"):
                if old != path:
                    old.unlink(missing_ok=True)
    except OSError as exc:
        if "tmp" in locals():
            Path(tmp).unlink(missing_ok=True)
        warnings.warn(f"{name}: could not write the decoded cache under {path.parent} ({exc}); "
                      "set BDB_DATA_CACHE to a writable folder to load faster next time", stacklevel=2)
        return arrays, meta, None
    return arrays, meta, path
