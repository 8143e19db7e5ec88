"""The one result store: a directory per run, named by its config hash, plus an SQLite index.

A run is written into a temporary directory and swapped into place, under a per-run file lock,
only after its completion marker is written: a killed run never looks complete, concurrent
writers of one run id never collide, and a reader that meets a run mid-swap waits for the lock
and reads the finished one. Nothing here unpickles anything: the run's data is JSON (strict: no
NaN) and safetensors. The index (bdcore.runs.index) is derived from the run directories and heals
itself; a run's success never depends on it.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from bdcore.errors import BdbError, warn
from bdcore.runs.index import COMPLETE, RunIndex

# COMPLETE and warn are used here and re-exported for old callers
DEFAULT_ROOT = "bdb-runs"
RUN_ID_RE = re.compile(r"^[ad]-[0-9a-f]+$")
"""A run id, or a unique prefix of one: 'a-' (attack) or 'd-' (defense) and hex digits."""
STALE_SECONDS = 3600
"""Temporary run directories older than this were left by killed writers and are removed."""
LOCK_TIMEOUT = 600.0
MAX_INFO_ELEMENTS = 100_000
"""The largest tensor stored inline in a run's JSON (bigger ones belong in safetensors)."""
NULLED_WHEN_DIVERGED = ("cacc", "asr", "ra", "der", "rir")


def default_root() -> Path:
    """$BDB_RUNS, else ./bdb-runs."""
    return Path(os.environ.get("BDB_RUNS", DEFAULT_ROOT))


def cache_root() -> Path:
    """$BDB_CACHE, else $XDG_CACHE_HOME/bdb, else ~/.cache/bdb: where defenses cache what they build.

    It is deliberately not inside a run store: a defense's cache path must not lead to the attack runs
    (their poison indices, trigger and target) that the threat model keeps from it.
    """
    if os.environ.get("BDB_CACHE"):
        return Path(os.environ["BDB_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "bdb"


def check_run_ref(ref: str) -> str:
    """A run id or prefix as the user gave it, or a one-line error (no paths, no globs)."""
    if not isinstance(ref, str) or not ref.strip():
        raise BdbError("no run id given: pass a run id (a-... or d-...) or a unique prefix; see 'bdb results'")
    if not RUN_ID_RE.match(ref):
        raise BdbError(f"no finished run {ref!r}: that is not a run id ('a-' or 'd-' followed by hex digits, "
                       "or a unique prefix of one); see 'bdb results'")
    return ref


def to_json(obj: Any) -> tuple[Any, bool]:
    """A strict-JSON copy of obj and whether it held a non-finite number (replaced by null).

    Tensors and NumPy arrays become (nested) lists, one-element ones numbers; a tensor of more
    than MAX_INFO_ELEMENTS elements is rejected (save it as safetensors instead).
    """
    nonfinite = False

    def conv(o: Any) -> Any:
        nonlocal nonfinite
        if o is None or isinstance(o, (bool, str, int)):
            return o
        if isinstance(o, float):
            if math.isfinite(o):
                return o
            nonfinite = True
            return None
        if isinstance(o, dict):
            return {str(k): conv(v) for k, v in o.items()}
        if isinstance(o, (list, tuple)):
            return [conv(v) for v in o]
        if hasattr(o, "tolist") and hasattr(o, "shape"):  # torch tensors, NumPy arrays and scalars
            n = math.prod(o.shape) if o.shape else 1
            if n > MAX_INFO_ELEMENTS:
                raise BdbError(f"cannot store a tensor of shape {tuple(o.shape)} in a run's JSON "
                               f"(more than {MAX_INFO_ELEMENTS} numbers); save it as safetensors instead")
            return conv(o.tolist())
        if isinstance(o, Path):
            return str(o)
        if hasattr(o, "item"):  # other scalar types
            return conv(o.item())
        return str(o)

    return conv(obj), nonfinite


@dataclass
class Run:
    """A finished run as read back from its directory."""

    run_id: str
    path: Path
    config: dict[str, Any]
    meta: dict[str, Any]
    metrics: dict[str, Any]

    @property
    def kind(self) -> str:
        return "attack" if self.run_id.startswith("a-") else "defense"

    @property
    def diverged(self) -> bool:
        """Whether training produced non-finite weights or numbers (metrics are then null)."""
        return isinstance(self.metrics, dict) and self.metrics.get("diverged") is True

    def file(self, name: str) -> Path:
        return self.path / name


class RunWriter:
    """Collects a run's files in a temporary directory; notes non-finite weights or numbers."""

    def __init__(self, tmp: Path) -> None:
        self.dir = tmp
        self.diverged = False

    def json(self, name: str, obj: Any) -> None:
        clean, nonfinite = to_json(obj)
        self.diverged |= nonfinite
        (self.dir / name).write_text(json.dumps(clean, indent=2, sort_keys=True, allow_nan=False))

    def tensors(self, name: str, tensors: dict) -> None:
        import torch
        from safetensors.torch import save_file

        tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
        if any(v.is_floating_point() and not bool(torch.isfinite(v).all()) for v in tensors.values()):
            self.diverged = True
        save_file(tensors, str(self.dir / name))

    def text(self, name: str, text: str) -> None:
        (self.dir / name).write_text(text)

    def finish(self) -> None:
        """Mark a diverged run in its metrics (null scores, "diverged": true), then the completion marker."""
        metrics = self.dir / "metrics.json"
        if self.diverged and metrics.is_file():
            m = json.loads(metrics.read_text())
            if isinstance(m, dict):
                m["diverged"] = True
                for k in NULLED_WHEN_DIVERGED:
                    if k in m:
                        m[k] = None
                metrics.write_text(json.dumps(m, indent=2, sort_keys=True, allow_nan=False))
        (self.dir / COMPLETE).write_text(time.strftime("%Y-%m-%dT%H:%M:%S%z"))


class RunStore:
    """Runs under root/runs/<run id>/, an index at root/index.sqlite, attack artifacts at root/artifacts/
    (defenses cache theirs outside the store: `cache_root()`)."""

    def __init__(self, root: str | os.PathLike | None = None, *, index: bool = True) -> None:
        """index=False: writing a run leaves the SQLite index alone (grid workers: the driver, the one
        process that updates the index, picks their runs up when it next reads it)."""
        self.root = Path(root) if root is not None else default_root()
        self.update_index = index
        self.runs_dir = self.root / "runs"
        self.artifacts_dir = self.root / "artifacts"
        self.locks_dir = self.root / "locks"

    # checks and locks --------------------------------------------------------------------------
    def check_writable(self) -> None:
        """Fail now, not after training, if runs cannot be written here."""
        where = f"run store {self.root} (--runs / BDB_RUNS)"
        for p in (self.root, self.runs_dir, self.locks_dir):
            if p.exists() and not p.is_dir():
                raise BdbError(f"{where}: {p} is not a directory")
        try:
            for p in (self.runs_dir, self.locks_dir):
                p.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(prefix=".probe.", dir=self.runs_dir)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise BdbError(f"{where} is not writable: {exc.strerror or exc}") from None

    @contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """An inter-process lock on one run id (or 'index'), held for the block."""
        from filelock import FileLock

        self.locks_dir.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.locks_dir / f"{name}.lock"), timeout=LOCK_TIMEOUT):
            yield

    @contextmanager
    def building(self, run_id: str) -> Iterator[None]:
        """Held while a process computes a run, however long that takes.

        A second process asking for the same run (two grids, two workers, two test workers) waits
        here, then finds the run complete and reuses it instead of computing it twice. The lock is
        released by the operating system when its holder dies, so a killed run blocks nothing.
        """
        from filelock import FileLock

        self.locks_dir.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.locks_dir / f"{check_run_ref(run_id)}.build.lock"), timeout=-1):
            yield

    # reading ---------------------------------------------------------------------------------
    def path(self, run_id: str) -> Path:
        return self.runs_dir / check_run_ref(run_id)

    def is_complete(self, run_id: str) -> bool:
        return (self.path(run_id) / COMPLETE).is_file()

    def complete_ids(self) -> list[str]:
        """Ids of every run directory holding a completion marker (temporary ones excluded)."""
        if not self.runs_dir.is_dir():
            return []
        return sorted(p.name for p in self.runs_dir.iterdir()
                      if RUN_ID_RE.match(p.name) and (p / COMPLETE).is_file())

    def resolve(self, run_id: str) -> str:
        """A full run id from a unique prefix (like git)."""
        check_run_ref(run_id)
        if self.is_complete(run_id):
            return run_id
        if self.path(run_id).is_dir():
            raise BdbError(f"run {run_id} is incomplete (killed or failed); rerun it with --force")
        matches = [r for r in self.complete_ids() if r.startswith(run_id)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise BdbError(f"run id {run_id!r} is ambiguous ({', '.join(matches[:5])}); give more characters")
        raise BdbError(f"no finished run {run_id!r} under {self.runs_dir}; see 'bdb results'")

    def load(self, run_id: str) -> Run:
        """Read a finished run; a missing or corrupt one is a one-line error.

        A run being swapped in by another process is waited for (its lock), never read half-done.
        """
        try:
            return self._read(self.resolve(run_id))
        except BdbError:
            if not self.path(run_id).is_dir() and not (self.locks_dir / f"{run_id}.lock").exists():
                raise
        with self.lock(run_id):
            return self._read(self.resolve(run_id))

    def _read(self, run_id: str) -> Run:
        path = self.path(run_id)
        out = {}
        moved = BdbError(f"run {run_id} was replaced while being read")  # `load` then rereads it under the lock
        try:
            inode = path.stat().st_ino
        except OSError:
            raise moved from None
        for name in ("config.json", "meta.json", "metrics.json"):
            f = path / name
            if not f.is_file():  # missing, or a FIFO/device/directory that must not be opened
                what = "is missing" if not f.exists() else "is not a regular file"
                raise BdbError(f"run {run_id} is corrupt: {name} {what}; rerun it with --force")
            try:
                out[name] = json.loads(f.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise BdbError(f"run {run_id} is corrupt: {name} is not valid JSON; rerun it with --force") from None
            except OSError:  # a concurrent writer swapped the directory away between the check and the read
                raise moved from None
            if not isinstance(out[name], dict):
                raise BdbError(f"run {run_id} is corrupt: {name} is not a JSON object; rerun it with --force")
        try:
            if path.stat().st_ino != inode:  # files from two versions of the run: read it again
                raise moved
        except OSError:
            raise moved from None
        return Run(run_id, path, out["config.json"], out["meta.json"], out["metrics.json"])

    def load_tensors(self, run: Run, name: str) -> dict:
        """A tensor file of a loaded run; one that a --force writer is swapping in is waited for (its lock)."""
        try:
            return self._load_tensors(run, name)
        except BdbError:
            if run.file(name).exists():  # there but unreadable: corrupt, not a swap in progress
                raise
        with self.lock(run.run_id):
            return self._load_tensors(run, name)

    def _load_tensors(self, run: Run, name: str) -> dict:
        from safetensors.torch import load_file

        path = run.file(name)
        if path.exists() and not path.is_file():
            raise BdbError(f"run {run.run_id} is corrupt: {name} is not a regular file; rerun it with --force")
        try:
            return load_file(str(path))
        except FileNotFoundError:
            raise BdbError(f"run {run.run_id} is corrupt: {name} is missing; rerun it with --force") from None
        except Exception as exc:
            raise BdbError(f"run {run.run_id} is corrupt: {name} is unreadable ({exc}); rerun it with --force") from None

    # writing ---------------------------------------------------------------------------------
    @contextmanager
    def write(self, run_id: str) -> Iterator[RunWriter]:
        """Write a run atomically: files go to a temporary directory swapped into place at the end.

        Concurrent writers of one run id each finish cleanly; the last swap wins (same config,
        same result). The index is updated afterwards; if that fails the run still counts (the
        index heals on its next read).
        """
        check_run_ref(run_id)
        self.check_writable()
        self.clean_stale()
        tmp = Path(tempfile.mkdtemp(prefix=f".{run_id}.", dir=self.runs_dir))
        old: Path | None = None
        try:
            writer = RunWriter(tmp)
            yield writer
            writer.finish()
            final = self.path(run_id)
            with self.lock(run_id):
                if final.exists():
                    old = self.runs_dir / f".{run_id}.old-{uuid.uuid4().hex[:8]}"
                    os.replace(final, old)
                os.replace(tmp, final)
        finally:
            for p in (tmp, old):
                if p is not None and p.exists():
                    shutil.rmtree(p, ignore_errors=True)
        if not self.update_index:
            return
        try:
            RunIndex(self).add(self.load(run_id))
        except Exception as exc:  # the run is saved; the index is only derived from it
            warn(f"run {run_id} is saved but the index was not updated ({type(exc).__name__}: {exc}); "
                 "it is rebuilt on the next 'bdb results'")

    def clean_stale(self, older_than: float = STALE_SECONDS) -> list[str]:
        """Remove temporary run directories left by killed writers; returns their names."""
        removed = []
        if not self.runs_dir.is_dir():
            return removed
        now = time.time()
        for p in self.runs_dir.iterdir():
            if not p.name.startswith(".") or not p.is_dir():
                continue
            try:
                if now - p.stat().st_mtime > older_than:
                    shutil.rmtree(p)
                    removed.append(p.name)
            except OSError:
                continue
        return removed

    # index -----------------------------------------------------------------------------------
    def index(self, run: Run) -> None:
        """Insert or update the run's row in the index."""
        RunIndex(self).add(run)

    def reindex(self) -> int:
        """Rebuild the index from the run directories; returns the number of runs indexed."""
        return RunIndex(self).rebuild()

    def rows(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Indexed runs (oldest first), with config and metrics decoded; the index is synced first."""
        return RunIndex(self).rows(kind)
