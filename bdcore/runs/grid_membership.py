"""Which runs belong to which grid: one small JSON file per grid name in the run store.

A run directory is named by its config alone, so one run can serve several grids and a run
knows nothing about them. `bdb bench` (and `bdb demo`) therefore records, after each
invocation, the ids of the runs that invocation finished or reused under
`<store>/grids/<name>.json`. A rerun of the same grid writes the same ids again; a grid edited
and rerun under the same name replaces its list, so its runs are those of its latest complete
invocation; a killed invocation records nothing and the resumed one (which reuses every
finished run) records them all. Written atomically under the store's lock for the grid.
No torch here.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from bdcore.errors import BdbError
from bdcore.errors import warn
from bdcore.runs.store import RunStore

GRIDS_DIR = "grids"
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def _file_name(name: str) -> str:
    """A file name for a grid name: the name itself when it is safe, else a slug plus a hash."""
    if _SAFE.match(name) and not name.endswith(".json"):
        return f"{name}.json"
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._-")[:40] or "grid"
    return f"{slug}-{hashlib.sha256(name.encode()).hexdigest()[:10]}.json"


def grids_dir(store: RunStore) -> Path:
    """The directory of the store's grid membership files."""
    return store.root / GRIDS_DIR


def record_grid(store: RunStore, name: str, run_ids: list[str], grid: dict[str, Any] | None = None) -> Path:
    """Record the runs of one grid invocation (replacing the grid's earlier list); returns the file.

    grid: the grid's settings as JSON (kept for reference). A failure to write is a warning only:
    the runs themselves are saved.
    """
    d = grids_dir(store)
    path = d / _file_name(name)
    doc = {"name": name, "runs": list(dict.fromkeys(run_ids)), "recorded": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
           "grid": grid or {}}
    try:
        d.mkdir(parents=True, exist_ok=True)
        with store.lock(f"grid-{path.stem}"):
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=d)
            try:
                with os.fdopen(fd, "w") as f:
                    json.dump(doc, f, indent=2, sort_keys=True)
                os.chmod(tmp, 0o644)  # as the store's other JSON files (mkstemp makes it private)
                os.replace(tmp, path)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
    except OSError as exc:
        warn(f"could not record the runs of grid {name!r} in {d} ({exc.strerror or exc}); "
             "'bdb results --grid' will not know them until the grid is rerun")
    return path


def _read(path: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("name"), str) or not isinstance(doc.get("runs"), list):
        return None
    if not all(isinstance(r, str) for r in doc["runs"]):
        return None
    return doc


def recorded_grids(store: RunStore) -> dict[str, dict[str, Any]]:
    """Every recorded grid: name -> its membership document (unreadable files are skipped with a warning)."""
    d = grids_dir(store)
    if not d.is_dir():
        return {}
    out = {}
    for p in sorted(d.glob("*.json")):
        doc = _read(p)
        if doc is None:
            warn(f"skipped the unreadable grid membership file {p}")
            continue
        out[doc["name"]] = doc
    return out


def grid_run_ids(store: RunStore, name: str) -> list[str]:
    """The run ids recorded for a grid, or a one-line error naming the recorded grids."""
    doc = _read(grids_dir(store) / _file_name(name))
    if doc is None or doc["name"] != name:
        doc = recorded_grids(store).get(name)
    if doc is None:
        known = sorted(recorded_grids(store))
        listed = f"recorded grids: {', '.join(known)}" if known else "no grid is recorded yet"
        raise BdbError(f"no grid {name!r} in the run store {store.root} ({listed}); "
                       "grids are recorded by 'bdb bench' and 'bdb demo'")
    return list(doc["runs"])
