"""One benchmark grid from its file to stored runs: what `bdb bench` and `bdb demo` do, callable from Python.

`run_benchmark` checks every method and setting of the grid and the whole plan before any training
(bdcore.bench.preflight), runs the plan (bdcore.bench.executor), and records which runs belong to
the grid in the store (for `bdb results --grid` and the report). The leaderboard is then read from
the store (bdcore.reporting.leaderboard).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bdcore.api.registry import Registry, registry
from bdcore.bench.executor import Outcome, Reporter, check_executor, plan_grid, run_grid
from bdcore.bench.grid import Grid, load_grid
from bdcore.bench.preflight import check_run_plan
from bdcore.runs.grid_membership import record_grid
from bdcore.runs.store import RunStore


@dataclass
class BenchmarkResult:
    """What a benchmark ran: the grid, every task's outcome, and the ids of its stored runs."""

    grid: Grid
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def run_ids(self) -> list[str]:
        """Runs that belong to the grid's results (finished or diverged: a diverged run is a result too)."""
        return [o.run_id for o in self.outcomes if o.ok or o.status == "diverged"]

    @property
    def failures(self) -> list[Outcome]:
        """Tasks that failed or were skipped (rerunning the same grid retries them; finished runs are reused)."""
        return [o for o in self.outcomes if not o.ok]


def run_benchmark(grid: Grid | str | Path, store: RunStore, *, device: str = "auto", data_root: str | None = None,
                  force: bool = False, workers: int = 1, executor: str = "local", address: str | None = None,
                  threads: int | None = None, reporter: Reporter | None = None,
                  overrides: dict[str, Any] | None = None, reg: Registry | None = None) -> BenchmarkResult:
    """Run a grid (a Grid or the path of its TOML file): every attack run once, every defense on each.

    overrides: grid fields replaced before validation, as if written in the file (`bdb demo --dataset`).
    Raises BdbError, before any training, for an unknown method, a bad setting, executor or store."""
    check_executor(executor, address)
    if not isinstance(grid, Grid):
        grid = load_grid(grid)
    if overrides:
        grid = Grid.model_validate({**grid.model_dump(mode="json"), **overrides})
    reg = reg or registry()
    for entry in grid.attacks:
        reg.get("attack", entry.name)
    for entry in grid.defenses:
        if entry.name != "none":
            reg.get("defense", entry.name)
    attack_cfgs = check_run_plan(store, device, grid.attack_runs(),
                                 [(d.name, d.set) for d in grid.defenses if d.name != "none"], data_root=data_root, reg=reg)
    plan = plan_grid(attack_cfgs, grid.defense_runs)
    outcomes = run_grid(plan, str(store.root), device=device, data_root=data_root, force=force, workers=workers,
                        executor=executor, address=address, threads=threads, reporter=reporter)
    result = BenchmarkResult(grid, outcomes)
    record_grid(store, grid.name, result.run_ids, grid.model_dump(mode="json"))
    return result
