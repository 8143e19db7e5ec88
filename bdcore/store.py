"""The one result store: a directory per run, named by its config hash, plus an SQLite index.

A run is written into a temporary directory and renamed into place only after its completion
marker is written, so a killed run never looks complete. Nothing here unpickles anything: the
run's data is JSON and safetensors.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from bdcore.errors import BdbError

COMPLETE = "COMPLETE"
DEFAULT_ROOT = "bdb-runs"


def default_root() -> Path:
    """$BDB_RUNS, else ./bdb-runs."""
    return Path(os.environ.get("BDB_RUNS", DEFAULT_ROOT))


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

    def file(self, name: str) -> Path:
        return self.path / name


class RunWriter:
    """Collects a run's files in a temporary directory."""

    def __init__(self, tmp: Path) -> None:
        self.dir = tmp

    def json(self, name: str, obj: Any) -> None:
        (self.dir / name).write_text(json.dumps(obj, indent=2, sort_keys=True, default=str))

    def tensors(self, name: str, tensors: dict) -> None:
        from safetensors.torch import save_file

        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(self.dir / name))

    def text(self, name: str, text: str) -> None:
        (self.dir / name).write_text(text)


class RunStore:
    """Runs under root/runs/<run id>/, an index at root/index.sqlite, artifacts at root/artifacts/."""

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = Path(root) if root is not None else default_root()
        self.runs_dir = self.root / "runs"
        self.artifacts_dir = self.root / "artifacts"

    # reading ---------------------------------------------------------------------------------
    def path(self, run_id: str) -> Path:
        return self.runs_dir / run_id

    def is_complete(self, run_id: str) -> bool:
        return (self.path(run_id) / COMPLETE).is_file()

    def resolve(self, run_id: str) -> str:
        """A full run id from a unique prefix (like git)."""
        if self.is_complete(run_id):
            return run_id
        if self.path(run_id).is_dir():
            raise BdbError(f"run {run_id} is incomplete (killed or failed); rerun it with --force")
        matches = sorted(p.name for p in self.runs_dir.glob(f"{run_id}*") if (p / COMPLETE).is_file()) if self.runs_dir.is_dir() else []
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise BdbError(f"run id {run_id!r} is ambiguous ({', '.join(matches[:5])}); give more characters")
        raise BdbError(f"no finished run {run_id!r} under {self.runs_dir}; see 'bdb results'")

    def load(self, run_id: str) -> Run:
        """Read a finished run; a missing or corrupt one is a one-line error."""
        run_id = self.resolve(run_id)
        path = self.path(run_id)
        out = {}
        for name in ("config.json", "meta.json", "metrics.json"):
            try:
                out[name] = json.loads((path / name).read_text())
            except FileNotFoundError:
                raise BdbError(f"run {run_id} is corrupt: {name} is missing; rerun it with --force") from None
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise BdbError(f"run {run_id} is corrupt: {name} is not valid JSON; rerun it with --force") from None
        return Run(run_id, path, out["config.json"], out["meta.json"], out["metrics.json"])

    def load_tensors(self, run: Run, name: str) -> dict:
        from safetensors.torch import load_file

        path = run.file(name)
        try:
            return load_file(str(path))
        except FileNotFoundError:
            raise BdbError(f"run {run.run_id} is corrupt: {name} is missing; rerun it with --force") from None
        except Exception as exc:
            raise BdbError(f"run {run.run_id} is corrupt: {name} is unreadable ({exc}); rerun it with --force") from None

    # writing ---------------------------------------------------------------------------------
    @contextmanager
    def write(self, run_id: str) -> Iterator[RunWriter]:
        """Write a run atomically: files go to a temporary directory renamed into place at the end."""
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{run_id}.", dir=self.runs_dir))
        try:
            writer = RunWriter(tmp)
            yield writer
            (tmp / COMPLETE).write_text(time.strftime("%Y-%m-%dT%H:%M:%S%z"))
            final = self.path(run_id)
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        self.index(self.load(run_id))

    # index -----------------------------------------------------------------------------------
    def _db(self) -> sqlite3.Connection:
        self.root.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(self.root / "index.sqlite")
        con.execute(
            "CREATE TABLE IF NOT EXISTS runs (run_id TEXT PRIMARY KEY, kind TEXT, attack TEXT, defense TEXT,"
            " dataset TEXT, model TEXT, pratio REAL, seed INTEGER, parent TEXT, created TEXT,"
            " config TEXT, metrics TEXT)"
        )
        return con

    def index(self, run: Run) -> None:
        """Insert or update the run's row."""
        c = run.config
        parent = c.get("attack_run")
        attack_cfg = run.meta.get("attack_config", {}) if run.kind == "defense" else c
        row = (
            run.run_id, run.kind, attack_cfg.get("attack"), c.get("defense"),
            attack_cfg.get("dataset"), attack_cfg.get("model"), attack_cfg.get("pratio"), c.get("seed"),
            parent, run.meta.get("finished", ""), json.dumps(c, sort_keys=True), json.dumps(run.metrics, sort_keys=True),
        )
        with self._db() as con:
            con.execute("INSERT OR REPLACE INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", row)
        con.close()

    def reindex(self) -> int:
        """Rebuild the index from the run directories; returns the number of runs indexed."""
        with self._db() as con:
            con.execute("DELETE FROM runs")
        con.close()
        n = 0
        if self.runs_dir.is_dir():
            for p in sorted(self.runs_dir.iterdir()):
                if (p / COMPLETE).is_file():
                    try:
                        self.index(self.load(p.name))
                        n += 1
                    except BdbError:
                        continue
        return n

    def rows(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Indexed runs (oldest first), with config and metrics decoded."""
        if not (self.root / "index.sqlite").is_file():
            return []
        con = self._db()
        con.row_factory = sqlite3.Row
        q = "SELECT * FROM runs" + (" WHERE kind = ?" if kind else "") + " ORDER BY created, run_id"
        rows = [dict(r) for r in con.execute(q, (kind,) if kind else ())]
        con.close()
        for r in rows:
            r["config"] = json.loads(r["config"])
            r["metrics"] = json.loads(r["metrics"])
        return rows
