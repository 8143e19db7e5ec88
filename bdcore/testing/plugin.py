"""pytest plugin of the conformance kit (entry point `pytest11: bdcore`): shared fixtures.

Runs made through these fixtures go to one run store per test session, so a backdoored model
trained for one test is reused by every other test asking for the same configuration.
"""

from __future__ import annotations

from typing import Any, Callable

import pytest

SEED_ENV = "BDB_TEST_SEED"
"""Environment variable: added to every seed the `backdoored_run` / `defended_run` fixtures are asked for,
so the whole efficacy suite can be rerun on other seeds (the thresholds' spread is measured that way)."""

RECORD_ENV = "BDB_TEST_RECORD"
"""Environment variable: a directory; each run a fixture returns is appended there (one JSON line per run:
the test, the method, its settings, seed, the kernel set from the run's meta.json, the metrics).
`benchmarks/thresholds.py` tabulates such records over kernel sets and seeds."""


def seed_offset() -> int:
    import os

    raw = os.environ.get(SEED_ENV, "0").strip() or "0"
    try:
        return int(raw)
    except ValueError:
        raise pytest.UsageError(f"{SEED_ENV}={raw!r} is not a whole number; set it to e.g. 1") from None


def pytest_configure(config):
    """One torch CPU thread per test process unless the environment says otherwise: the efficacy thresholds
    were measured single-threaded, and CPU convolutions give other numbers with other thread counts, so a
    plain `pytest` gives the verdicts of `./dev.sh test`."""
    import os
    import sys

    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    torch = sys.modules.get("torch")
    want = os.environ["OMP_NUM_THREADS"]
    if torch is not None and want.isdigit() and torch.get_num_threads() != int(want):
        torch.set_num_threads(int(want))
    seed_offset()


def scalar_metrics(metrics: dict) -> dict[str, float]:
    """A run's numbers, flat: C-ACC, ASR, RA, DER, ...; `before_*` for the attack run's; a detector's AUROC,
    TPR, FPR (training data or test inputs) under their own names."""
    out: dict[str, float] = {}
    for k, v in metrics.items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out[k] = v
        elif k in ("detection", "input_detection", "before") and isinstance(v, dict):
            prefix = "before_" if k == "before" else ""
            out.update({prefix + kk: vv for kk, vv in v.items() if isinstance(vv, (int, float))})
    return out


def _record(kind: str, name: str, settings: dict | None, seed: int, run: Any) -> None:
    import json
    import os

    out = os.environ.get(RECORD_ENV)
    if not out:
        return
    from pathlib import Path

    test = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" (", 1)[0]
    row = {"test": test, "kind": kind, "name": name, "settings": settings or {}, "seed": seed,
           "isa": run.meta.get("cpu_kernels"), "run_id": run.run_id,
           "metrics": scalar_metrics(run.metrics)}
    Path(out).mkdir(parents=True, exist_ok=True)
    with open(Path(out) / f"{os.environ.get('PYTEST_XDIST_WORKER', 'main')}.jsonl", "a") as f:
        f.write(json.dumps(row, sort_keys=True, default=str) + "\n")


@pytest.fixture(autouse=True)
def _torch_threads_unchanged():
    """Fail a test that leaves torch's CPU thread count changed (and restore it): every later run in the
    worker would otherwise train with other threads than the suite's one, slower and with other numbers
    (umap-learn's numba kernels did this to the whole rest of a worker's session)."""
    import sys

    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch is not None else None
    yield
    torch = sys.modules.get("torch")
    if torch is None:
        return
    if before is None:  # torch was first imported by this test: compare with what the environment asks
        import os

        want = os.environ.get("OMP_NUM_THREADS")
        before = int(want) if want and want.isdigit() else torch.get_num_threads()
    after = torch.get_num_threads()
    if after != before:
        torch.set_num_threads(before)
        pytest.fail(f"this test changed torch's CPU thread count from {before} to {after} (restored); wrap the "
                    "call that changes it in bdcore.nn.runtime.keep_threads()", pytrace=False)


@pytest.fixture(scope="session")
def bdb_store(tmp_path_factory):
    """A run store shared by the whole test session, across pytest-xdist workers too.

    Workers share one directory: a run one worker is computing is waited for by another that
    needs it (`RunStore.building`), so each backdoored model is trained once per session.
    """
    import os

    from bdcore.runs.store import RunStore

    if os.environ.get("PYTEST_XDIST_WORKER"):
        return RunStore(tmp_path_factory.getbasetemp().parent / "bdb-runs-shared")
    return RunStore(tmp_path_factory.mktemp("bdb-runs"))


@pytest.fixture(scope="session")
def mnist5k():
    """The embedded MNIST sample (4,000 train / 1,000 test, 28x28)."""
    from bdcore.api.resolve import load_dataset

    return load_dataset("mnist5k")


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's 8x8 digits (1,437 train / 360 test)."""
    from bdcore.api.resolve import load_dataset

    return load_dataset("digits")


MINIATURE = {"epochs": 15, "lr": 0.1, "batch_size": 128}
"""The recipe of the 'attack in miniature' tests (the 'quick' preset): small-cnn on mnist5k
reaches ~97% in ~20 s. An attack whose backdoor and clean accuracy hold with fewer epochs may pass
`epochs=` (e.g. `bdcore.testing.SHORT_EPOCHS`, compared with `clean_run_short`) to `backdoored_run`, with
the numbers measured there."""


@pytest.fixture(scope="session")
def backdoored_run(bdb_store) -> Callable[..., Any]:
    """Factory: backdoored_run(attack='badnet', pratio=0.1, settings=None, **recipe) -> Run (cached)."""
    from bdcore.bench.harness import run_attack
    from bdcore.testing import attack_config

    def make(attack: str = "badnet", *, pratio: float = 0.1, settings: dict | None = None,
             dataset: str = "mnist5k", model: str = "small-cnn", seed: int = 0, **recipe: Any):
        r = dict(MINIATURE)
        r.update(recipe)
        seed += seed_offset()
        cfg = attack_config(attack, dataset=dataset, model=model, pratio=pratio, seed=seed, settings=settings, **r)
        run = run_attack(cfg, store=bdb_store, device="cpu")
        _record("attack", attack, settings, seed, run)
        return run

    return make


@pytest.fixture(scope="session")
def defended_run(bdb_store) -> Callable[..., Any]:
    """Factory: defended_run(defense, attack_run_id, settings=None, seed=0, preset='quick') -> Run (cached)."""
    from bdcore.config import DefenseRunConfig
    from bdcore.bench.harness import run_defense

    def make(defense: str, attack_run_id: str, *, settings: dict | None = None, seed: int = 0,
             preset: str = "quick"):
        seed += seed_offset()
        cfg = DefenseRunConfig(defense=defense, defense_config=settings or {}, attack_run=attack_run_id, seed=seed,
                               preset=preset)
        run = run_defense(cfg, store=bdb_store, device="cpu")
        _record("defense", defense, settings, seed, run)
        return run

    return make


@pytest.fixture(scope="session")
def clean_run(backdoored_run):
    """A clean model (no poison) with the miniature recipe, as a reference for clean accuracy."""
    return backdoored_run("none")


@pytest.fixture(scope="session")
def clean_run_short(backdoored_run):
    """`clean_run` trained for `bdcore.testing.SHORT_EPOCHS`: the reference of attack tests that train that long."""
    from bdcore.testing import SHORT_EPOCHS

    return backdoored_run("none", epochs=SHORT_EPOCHS)
