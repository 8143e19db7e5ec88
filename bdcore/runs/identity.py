"""What makes two runs the same besides their settings: the data and the files settings name.

A run id hashes the resolved config; these helpers put into it a fingerprint of the loaded
dataset (its uint8 images and labels) and the content hash of every file or directory a setting
names, so that other data or an edited trigger image give another run id.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from bdcore.errors import BdbError

_FINGERPRINTS: dict[int, tuple[object, str]] = {}


def dataset_fingerprint(data: Any) -> str:
    """sha256 (first 16 hex digits) over a dataset's train/test images and labels; cached per object."""
    hit = _FINGERPRINTS.get(id(data))
    if hit is not None and hit[0] is data:
        return hit[1]
    h = hashlib.sha256()
    for t in (data.x_train, data.y_train, data.x_test, data.y_test):
        arr = t.detach().cpu().contiguous().numpy()
        h.update(f"{arr.dtype}{arr.shape}".encode())
        h.update(memoryview(arr).cast("B"))
    fp = h.hexdigest()[:16]
    _FINGERPRINTS[id(data)] = (data, fp)
    return fp


def check_fingerprint(recorded: str | None, data: Any, run_id: str) -> None:
    """The data loaded now is the data a stored run was trained on (runs without a record pass)."""
    if recorded is not None and dataset_fingerprint(data) != recorded:
        raise BdbError(f"run {run_id} was trained on other data than {data.name} gives now "
                       "(check --data-root); its results would not apply")


def content_hash(path: Path) -> str:
    """sha256 of a file's bytes, or of a directory's relative paths and file bytes."""
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        if f is not path:
            h.update(str(f.relative_to(path)).encode() + b"\0")
        with f.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:16]


def _looks_like_path(value: str) -> bool:
    # A bare word ("bottom-right") is a setting value even if a file of that name happens to exist.
    return bool(value) and (os.sep in value or "." in Path(value).name) and os.path.exists(value)


def resolve_input_files(values: Any) -> tuple[Any, dict[str, str]]:
    """Settings with every string naming an existing file/directory made absolute, and their content hashes.

    Returns (values with absolute paths, {absolute path: content hash}).
    """
    files: dict[str, str] = {}

    def walk(v: Any) -> Any:
        if isinstance(v, str) and _looks_like_path(v):
            p = Path(v).resolve()
            if not (p.is_file() or p.is_dir()):
                raise BdbError(f"setting value {v!r} names {p}, which is neither a file nor a directory")
            try:
                files[str(p)] = content_hash(p)
            except OSError as exc:
                raise BdbError(f"cannot read {p} (named by a setting): {exc.strerror or exc}") from None
            return str(p)
        if isinstance(v, dict):
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return v

    return walk(values), files
