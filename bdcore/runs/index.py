"""The SQLite index over the run store: derived from the run directories, and self-healing.

The run directories are the truth. Every read first syncs the index with them: a missing,
corrupt (not a database, wrong schema) or out-of-date index is rebuilt or patched, rows of runs
whose completion marker is gone are dropped, and a malformed run is skipped and named rather
than breaking the listing. Writes happen under one lock file; a rebuild goes to a new file that
replaces the old one atomically, so readers never see a half-built index.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bdcore.errors import BdbError, warn

if TYPE_CHECKING:
    from bdcore.runs.store import Run, RunStore

COMPLETE = "COMPLETE"
"""The marker file a run directory gets last, when everything else in it is written (the store's commit)."""

INDEX_FILE = "index.sqlite"
SCHEMA_VERSION = 2
COLUMNS = ("run_id", "kind", "attack", "defense", "dataset", "model", "pratio", "seed", "parent", "created",
           "stamp", "config", "metrics")
_CREATE = (
    "CREATE TABLE IF NOT EXISTS runs (run_id TEXT PRIMARY KEY, kind TEXT, attack TEXT, defense TEXT,"
    " dataset TEXT, model TEXT, pratio REAL, seed INTEGER, parent TEXT, created TEXT, stamp TEXT,"
    " config TEXT, metrics TEXT)"
)
NUMERIC_METRICS = ("cacc", "asr", "ra", "der", "rir", "psnr", "ssim")
SQLITE_INT = 2**63


class MalformedRun(BdbError):
    """A finished run whose files parse but whose values cannot be indexed."""


def _stamp(run_dir: Path) -> str:
    """Changes whenever the run directory is replaced (completion marker's inode and mtime)."""
    st = (run_dir / COMPLETE).stat()
    return f"{st.st_ino}:{st.st_mtime_ns}"


def _text(run_id: str, what: str, v: Any) -> str | None:
    if v is None or isinstance(v, str):
        return v
    raise MalformedRun(f"run {run_id} is malformed: {what} is {type(v).__name__}, expected text")


def _number(run_id: str, what: str, v: Any) -> float | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise MalformedRun(f"run {run_id} is malformed: {what} is {v!r}, expected a finite number")
    return float(v)


def row_of(run: Run) -> tuple:
    """The index row of a run, or MalformedRun naming the bad value."""
    rid, c, meta, metrics = run.run_id, run.config, run.meta, run.metrics
    attack_cfg = meta.get("attack_config", {}) if run.kind == "defense" else c
    if not isinstance(attack_cfg, dict):
        raise MalformedRun(f"run {rid} is malformed: meta.json attack_config is not an object")
    seed = c.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not -SQLITE_INT <= seed < SQLITE_INT):
        raise MalformedRun(f"run {rid} is malformed: seed is {seed!r}, expected an integer")
    for k in NUMERIC_METRICS:
        _number(rid, f"metric {k}", metrics.get(k))
    return (
        rid, run.kind, _text(rid, "attack", attack_cfg.get("attack")), _text(rid, "defense", c.get("defense")),
        _text(rid, "dataset", attack_cfg.get("dataset")), _text(rid, "model", attack_cfg.get("model")),
        _number(rid, "pratio", attack_cfg.get("pratio")), seed, _text(rid, "attack_run", c.get("attack_run")),
        str(meta.get("finished", "")), _stamp(run.path),
        json.dumps(c, sort_keys=True, allow_nan=False), json.dumps(metrics, sort_keys=True, allow_nan=False),
    )


class RunIndex:
    """The index of one run store."""

    def __init__(self, store: RunStore) -> None:
        self.store = store
        self.path = store.root / INDEX_FILE
        self.skipped: dict[str, str] = {}
        """Runs left out of the index (id -> reason) by the last sync or rebuild."""

    def _connect(self, path: Path | None = None) -> sqlite3.Connection:
        con = sqlite3.connect(path or self.path, timeout=30)
        con.execute(_CREATE)
        return con

    def _read_only_uri(self) -> str:
        return self.path.resolve().as_uri() + "?mode=ro"

    def _valid(self) -> bool:
        """The index file exists, is a database and has the current schema."""
        if not self.path.is_file():
            return False
        try:
            con = sqlite3.connect(self._read_only_uri(), uri=True, timeout=30)
            try:
                version = con.execute("PRAGMA user_version").fetchone()[0]
                cols = [r[1] for r in con.execute("PRAGMA table_info(runs)")]
            finally:
                con.close()
        except sqlite3.DatabaseError:
            return False
        return version == SCHEMA_VERSION and tuple(cols) == COLUMNS

    def _load_row(self, run_id: str) -> tuple | None:
        try:
            return row_of(self.store.load(run_id))
        except BdbError as exc:
            self.skipped[run_id] = str(exc)
            return None

    def add(self, run: Run) -> None:
        """Insert or update one run's row (a no-op if the index is missing: the next read rebuilds it)."""
        row = row_of(run)
        with self.store.lock("index"):
            if not self._valid():
                self._rebuild_locked()
                return
            con = self._connect()
            try:
                with con:
                    con.execute(f"INSERT OR REPLACE INTO runs VALUES ({','.join('?' * len(COLUMNS))})", row)
            finally:
                con.close()

    def rebuild(self) -> int:
        """Rebuild the index from the run directories; returns the number of runs indexed."""
        with self.store.lock("index"):
            return self._rebuild_locked()

    def _rebuild_locked(self) -> int:
        self.store.clean_stale()
        rows = [r for r in (self._load_row(rid) for rid in self.store.complete_ids()) if r is not None]
        self.store.root.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{INDEX_FILE}.{os.getpid()}")
        tmp.unlink(missing_ok=True)
        con = self._connect(tmp)
        try:
            con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            with con:
                con.executemany(f"INSERT OR REPLACE INTO runs VALUES ({','.join('?' * len(COLUMNS))})", rows)
        finally:
            con.close()
        os.replace(tmp, self.path)
        self._report()
        return len(rows)

    def sync(self) -> None:
        """Bring the index in line with the run directories (rebuild it if missing or corrupt)."""
        on_disk = {rid: self.store.path(rid) for rid in self.store.complete_ids()}
        if not on_disk and not self.path.exists():
            return
        with self.store.lock("index"):
            if not self._valid():
                if self.path.exists():
                    warn(f"the run index {self.path} was unreadable or outdated; rebuilt it from the run directories")
                self._rebuild_locked()
                return
            con = self._connect()
            try:
                indexed = dict(con.execute("SELECT run_id, stamp FROM runs"))
                stale = [rid for rid in indexed if rid not in on_disk]
                changed = []
                for rid, path in on_disk.items():
                    try:
                        if indexed.get(rid) != _stamp(path):
                            changed.append(rid)
                    except OSError:
                        continue
                rows = [r for r in (self._load_row(rid) for rid in changed) if r is not None]
                stale += [rid for rid in changed if rid in self.skipped and rid in indexed]
                with con:
                    con.executemany("DELETE FROM runs WHERE run_id = ?", [(r,) for r in stale])
                    con.executemany(f"INSERT OR REPLACE INTO runs VALUES ({','.join('?' * len(COLUMNS))})", rows)
            finally:
                con.close()
        self._report()

    def _report(self) -> None:
        for rid, reason in sorted(self.skipped.items()):
            warn(f"skipped {rid}: {reason}")

    def rows(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Indexed runs (oldest first), with config and metrics decoded, after a sync."""
        try:
            self.sync()
        except (OSError, sqlite3.Error) as exc:  # e.g. a read-only store: show what the index holds
            warn(f"could not update the run index ({type(exc).__name__}: {exc})")
        if not self._valid():
            return []
        con = sqlite3.connect(self._read_only_uri(), uri=True, timeout=30)
        con.row_factory = sqlite3.Row
        try:
            q = "SELECT * FROM runs" + (" WHERE kind = ?" if kind else "") + " ORDER BY created, run_id"
            rows = [dict(r) for r in con.execute(q, (kind,) if kind else ())]
        finally:
            con.close()
        for r in rows:
            r.pop("stamp", None)
            r["config"] = json.loads(r["config"])
            r["metrics"] = json.loads(r["metrics"])
        return rows
