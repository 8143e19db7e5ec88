"""Finding a dataset's files under the data root, with one-line errors that say what to put where."""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

from bdcore.errors import BdbError


def data_root(root: str | os.PathLike | None) -> Path:
    """The data root: --data-root, else $BDB_DATA, else ./data."""
    return Path(root or os.environ.get("BDB_DATA", "data"))


def locate(root: str | os.PathLike | None, marker: str, subdirs: tuple[str, ...]) -> Path:
    """The directory holding `marker`: the root itself or one of the official extracted folder names under it.

    Falls back to the root when none holds it, so the missing-file error names the root.
    """
    base = data_root(root)
    for cand in (base, *(base / s for s in subdirs)):
        if (cand / marker).exists():
            return cand
    return base


class MissingData(BdbError):
    """A dataset's file or folder is not there. bdcore.api.resolve.load_dataset adds how to fetch it
    with 'bdb download' to the message, for the datasets that command knows."""

    def __init__(self, dataset: str, message: str) -> None:
        super().__init__(message)
        self.dataset = dataset


def require(dataset: str, path: Path, how: str) -> Path:
    """path if it is a file, else a MissingData error saying in one line which file to put where."""
    if not path.is_file():
        raise MissingData(dataset, f"{dataset}: missing {path}; {how}")
    return path


def require_dir(dataset: str, path: Path, how: str) -> Path:
    """path if it is a directory, else a one-line MissingData error."""
    if not path.is_dir():
        raise MissingData(dataset, f"{dataset}: missing folder {path}; {how}")
    return path


def read_maybe_gzip(dataset: str, path: Path) -> bytes:
    """The bytes of a file, decompressed when it ends in .gz; a corrupt archive is a BdbError."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                return fh.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        raise BdbError(f"{dataset}: {path} is corrupt or truncated ({exc}); replace it with the official file") from None
