"""pytest plugin of the conformance kit (entry point `pytest11: bdcore`): shared fixtures.

Runs made through these fixtures go to one run store per test session, so a backdoored model
trained for one test is reused by every other test asking for the same configuration.
"""

from __future__ import annotations

from typing import Any, Callable

import pytest


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
                    "call that changes it in bdcore.harness.keep_threads()", pytrace=False)


@pytest.fixture(scope="session")
def bdb_store(tmp_path_factory):
    """A run store shared by the whole test session, across pytest-xdist workers too.

    Workers share one directory: a run one worker is computing is waited for by another that
    needs it (`RunStore.building`), so each backdoored model is trained once per session.
    """
    import os

    from bdcore.store import RunStore

    if os.environ.get("PYTEST_XDIST_WORKER"):
        return RunStore(tmp_path_factory.getbasetemp().parent / "bdb-runs-shared")
    return RunStore(tmp_path_factory.mktemp("bdb-runs"))


@pytest.fixture(scope="session")
def mnist5k():
    """The embedded MNIST sample (4,000 train / 1,000 test, 28x28)."""
    from bdcore.harness import load_dataset

    return load_dataset("mnist5k")


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's 8x8 digits (1,437 train / 360 test)."""
    from bdcore.harness import load_dataset

    return load_dataset("digits")


MINIATURE = {"epochs": 15, "lr": 0.1, "batch_size": 128}
"""The recipe of the 'attack in miniature' tests (the 'quick' preset): small-cnn on mnist5k
reaches ~97% in ~20 s. An attack whose backdoor and clean accuracy hold with fewer epochs may pass
`epochs=` (e.g. `bdcore.testing.SHORT_EPOCHS`) to `backdoored_run`, with the numbers measured there."""


@pytest.fixture(scope="session")
def backdoored_run(bdb_store) -> Callable[..., Any]:
    """Factory: backdoored_run(attack='badnet', pratio=0.1, settings=None, **recipe) -> Run (cached)."""
    from bdcore.harness import run_attack
    from bdcore.testing import attack_config

    def make(attack: str = "badnet", *, pratio: float = 0.1, settings: dict | None = None,
             dataset: str = "mnist5k", model: str = "small-cnn", seed: int = 0, **recipe: Any):
        r = dict(MINIATURE)
        r.update(recipe)
        cfg = attack_config(attack, dataset=dataset, model=model, pratio=pratio, seed=seed, settings=settings, **r)
        return run_attack(cfg, store=bdb_store, device="cpu")

    return make


@pytest.fixture(scope="session")
def defended_run(bdb_store) -> Callable[..., Any]:
    """Factory: defended_run(defense, attack_run_id, settings=None, seed=0, preset='quick') -> Run (cached)."""
    from bdcore.config import DefenseRunConfig
    from bdcore.harness import run_defense

    def make(defense: str, attack_run_id: str, *, settings: dict | None = None, seed: int = 0,
             preset: str = "quick"):
        cfg = DefenseRunConfig(defense=defense, defense_config=settings or {}, attack_run=attack_run_id, seed=seed,
                               preset=preset)
        return run_defense(cfg, store=bdb_store, device="cpu")

    return make


@pytest.fixture(scope="session")
def clean_run(backdoored_run):
    """A clean model (no poison) with the miniature recipe, as a reference for clean accuracy."""
    return backdoored_run("none")
