"""`bdb download <dataset>`: fetch the official archives, check them, unpack them where the loaders look.

Nothing else in bdb downloads. Each archive is fetched (when the network allows) into
`<data root>/<file>.part`, its MD5 is checked against the published value, then it is renamed
and unpacked; an archive already there (put by hand on an offline machine) is checked and
unpacked the same way. Without a network the command says in one line which file to put where.
Archives are unpacked member by member, refusing absolute paths, `..` and links.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from bdcore.data.datasets.files import data_root
from bdcore.errors import BdbError


@dataclass(frozen=True)
class Source:
    """One official file: where it comes from, its MD5, and what unpacking it must produce."""

    url: str
    md5: str
    done: str  # a path (relative to the data root) that exists once the file is in place and unpacked
    unpack: bool = True
    move: tuple[tuple[str, str], ...] = ()  # (from, to) relative to the root, after unpacking

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[1]


_GTSRB = "https://sid.erda.dk/public/archives/daaeac0d7ce1152aea9b61d9f1e19370/"
_MNIST = "https://ossci-datasets.s3.amazonaws.com/mnist/"

# MD5s as published by the datasets' authors (CIFAR) or as distributed with the archives.
SOURCES: dict[str, list[Source]] = {
    "cifar10": [Source("https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz", "c32a1d4ab5d03f1284b67883e8d87530",
                       "cifar-10-batches-bin/test_batch.bin")],
    "cifar100": [Source("https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz", "03b5dce01913d631647c71ecec9e9cb8",
                        "cifar-100-binary/test.bin")],
    "mnist": [Source(_MNIST + f, md5, f, unpack=False) for f, md5 in (
        ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
        ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
        ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"))],
    "gtsrb": [
        Source(_GTSRB + "GTSRB_Final_Training_Images.zip", "f33fd80ac59bff73c82d25ab499e03a3",
               "GTSRB/Final_Training/Images/00042/GT-00042.csv"),
        Source(_GTSRB + "GTSRB_Final_Test_Images.zip", "c7e4e6327067d32654124b0fe9e82185",
               "GTSRB/Final_Test/Images/00000.ppm"),
        Source(_GTSRB + "GTSRB_Final_Test_GT.zip", "fe31e9c9270bbcd7b84b7f21a9d9d9e5",
               "GTSRB/Final_Test/Images/GT-final_test.csv",
               move=(("GT-final_test.csv", "GTSRB/Final_Test/Images/GT-final_test.csv"),)),
    ],
    "tiny-imagenet": [Source("http://cs231n.stanford.edu/tiny-imagenet-200.zip", "90528d7ca1a48142e341f4ef8d21d0de",
                             "tiny-imagenet-200/val/val_annotations.txt")],
}

ProgressFn = Callable[[int, int | None], None]


def md5_of(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.md5()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _safe_target(root: Path, name: str) -> Path:
    target = (root / name).resolve()
    if not str(target).startswith(str(root.resolve()) + os.sep) and target != root.resolve():
        raise BdbError(f"archive member {name!r} would land outside {root}; the archive is not the official one")
    return target


def _merge(src: Path, dst: Path) -> None:
    """Move src into dst; folders that exist on both sides are merged."""
    if dst.is_dir() and src.is_dir():
        for child in src.iterdir():
            _merge(child, dst / child.name)
        src.rmdir()
    else:
        os.replace(src, dst)


def unpack(archive: Path, root: Path) -> None:
    """Unpack a .tar.gz or .zip into root (no absolute paths, no '..', no links).

    Members go to a temporary folder first and are moved into place at the end, so an interrupted
    unpack leaves nothing that looks like a finished dataset.
    """
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix=".unpack-", dir=root))
    try:
        _unpack_into(archive, tmp)
        for child in sorted(tmp.iterdir()):
            _merge(child, root / child.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _unpack_into(archive: Path, root: Path) -> None:
    try:
        if archive.name.endswith((".tar.gz", ".tgz")):
            with tarfile.open(archive, "r:gz") as tf:
                for m in tf.getmembers():
                    target = _safe_target(root, m.name)
                    if m.isdir():
                        target.mkdir(parents=True, exist_ok=True)
                    elif m.isfile():
                        target.parent.mkdir(parents=True, exist_ok=True)
                        src = tf.extractfile(m)
                        with open(target, "wb") as out:
                            shutil.copyfileobj(src, out)
                    else:
                        raise BdbError(f"{archive.name}: member {m.name!r} is a link or device; "
                                       "the archive is not the official one")
        elif archive.suffix == ".zip":
            with zipfile.ZipFile(archive) as zf:
                for info in zf.infolist():
                    target = _safe_target(root, info.filename)
                    if info.is_dir():
                        target.mkdir(parents=True, exist_ok=True)
                        continue
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(info) as src, open(target, "wb") as out:
                        shutil.copyfileobj(src, out)
        else:
            raise BdbError(f"{archive.name}: unknown archive type")
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as exc:
        raise BdbError(f"{archive} could not be unpacked ({exc}); delete it and run 'bdb download' again") from None


def _fetch(url: str, dest: Path, progress: ProgressFn | None, timeout: float) -> None:
    part = dest.with_name(dest.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, open(part, "wb") as out:
            total = resp.headers.get("Content-Length")
            total = int(total) if total and total.isdigit() else None
            done = 0
            while block := resp.read(1 << 20):
                out.write(block)
                done += len(block)
                if progress:
                    progress(done, total)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, dest)


def download(name: str, root: str | os.PathLike | None = None, *, progress: Callable[[str], ProgressFn] | None = None,
             timeout: float = 30.0, fetch: Callable[[str, Path, ProgressFn | None, float], None] = _fetch) -> list[str]:
    """Put a dataset's official files in place under the data root; returns one status line per file.

    Raises a one-line BdbError naming the file to put where when it cannot be fetched, or when a
    file's MD5 does not match (the bad file is moved aside to `<name>.bad`, never used).
    """
    if name not in SOURCES:
        raise BdbError(f"no download for dataset {name!r}; downloadable: {', '.join(SOURCES)} "
                       "(mnist5k and digits ship with their packages; imagefolder reads your own folder)")
    base = data_root(root)
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BdbError(f"cannot create the data root {base}: {exc.strerror or exc}; pass a writable --data-root") from None
    lines = []
    for src in SOURCES[name]:
        if (base / src.done).exists():
            lines.append(f"{src.filename}: in place")
            continue
        archive = base / src.filename
        if not archive.is_file():
            try:
                fetch(src.url, archive, progress(src.filename) if progress else None, timeout)
            except (urllib.error.URLError, OSError, TimeoutError) as exc:
                reason = getattr(exc, "reason", None) or exc
                raise BdbError(f"{name}: could not download {src.url} ({reason}); fetch it elsewhere and put "
                               f"{src.filename} in {base} (md5 {src.md5}), then run 'bdb download {name}' again") from None
            how = "downloaded"
        else:
            how = "found"
        got = md5_of(archive)
        if got != src.md5:
            bad = archive.with_name(archive.name + ".bad")
            os.replace(archive, bad)
            raise BdbError(f"{name}: {src.filename} has md5 {got}, expected {src.md5} (moved to {bad.name}); "
                           f"put the official {src.filename} in {base} or run 'bdb download {name}' again")
        if src.unpack:
            unpack(archive, base)
            for a, b in src.move:
                (base / b).parent.mkdir(parents=True, exist_ok=True)
                os.replace(base / a, base / b)
        lines.append(f"{src.filename}: {how}, md5 ok" + (", unpacked" if src.unpack else ""))
    return lines


def download_hint(dataset: str, root: str | os.PathLike | None) -> str:
    """', or run 'bdb download <dataset> --data-root <root>'' for a dataset 'bdb download' fetches, else ''."""
    if dataset not in SOURCES:
        return ""
    return f", or run 'bdb download {dataset} --data-root {data_root(root)}'"
