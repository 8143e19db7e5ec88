"""The Ray executor and the local process pool give the same runs and the same numbers.

(A module of its own: tests/test_executor.py checks the pool against the serial executor, and Ray
only for kill -9 recovery.)
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from bdcore.bench.executor import plan_grid, run_grid
from bdcore.bench.grid import Grid
from bdcore.testing import TIMING_KEYS, TINY_DATASET, TINY_EPOCHS

GRID = f"""
name = "ray-vs-pool"
datasets = ["{TINY_DATASET}"]
preset = "quick"
attacks = ["badnet"]
defenses = ["none", {{name = "ft", set = {{epochs = 1}}}}]
[train]
epochs = {TINY_EPOCHS}
batch_size = 64
"""


def _metrics(root: Path, run_id: str) -> dict:
    m = json.loads((root / "runs" / run_id / "metrics.json").read_text())
    return {k: v for k, v in m.items() if k not in TIMING_KEYS}


def test_ray_and_the_local_pool_give_identical_metrics(tmp_path):
    # Ray is installed by ./dev.sh setup (the extra bdcore[ray]); this test must not be skipped.
    # ~10 s of CPU, most of it starting a 1-CPU local Ray instance and the workers' imports.
    from bdcore.bench.preflight import check_attack
    from bdcore.api.registry import registry

    grid = Grid.model_validate(tomllib.loads(GRID))
    plan = plan_grid([check_attack(c, registry(), None) for c in grid.attack_runs()], grid.defense_runs)
    assert [t.kind for t in plan.tasks] == ["attack", "defense"]
    # one thread per run on both sides: CPU convolutions give other numbers with another thread count
    pooled = run_grid(plan, str(tmp_path / "pool"), device="cpu", workers=2, threads=1)
    rayed = run_grid(plan, str(tmp_path / "ray"), device="cpu", workers=1, threads=1, executor="ray")
    assert [o.status for o in pooled] == ["done", "done"], [o.error for o in pooled]
    assert [o.status for o in rayed] == ["done", "done"], [o.error for o in rayed]
    import ray

    assert not ray.is_initialized()  # the instance it started is shut down again
    for p, r in zip(pooled, rayed):
        assert p.run_id == r.run_id
        mp_, mr = _metrics(tmp_path / "pool", p.run_id), _metrics(tmp_path / "ray", r.run_id)
        assert mp_ == mr, f"{p.run_id}: the pool gave {mp_}, Ray {mr}"
        assert {"cacc", "asr", "ra"} <= mp_.keys()
    assert "der" in _metrics(tmp_path / "ray", rayed[1].run_id)
