"""Checking a whole plan (store, device, every method and setting, data, target) before training.

A run that would fail after minutes of training because of a bad setting of a later defense, a
target outside the dataset's classes or a store that cannot be written fails here instead, in
one line, before the first training step.
"""

from __future__ import annotations

from typing import Any

from bdcore.config import AttackRunConfig, build_config
from bdcore.errors import BdbError
from bdcore.bench.harness import check_run_attack, resolve_attack_config
from bdcore.api.resolve import load_dataset
from bdcore.nn.runtime import pick_device
from bdcore.api.registry import Registry, registry
from bdcore.runs.store import RunStore, check_run_ref


def check_attack(cfg: AttackRunConfig, reg: Registry, data_root: str | None) -> AttackRunConfig:
    """The resolved config of one attack run: method, settings, dataset (loaded), model and target."""
    resolved = resolve_attack_config(cfg, reg, data_root)
    data = load_dataset(cfg.dataset, data_root, reg)
    if not 0 <= cfg.target < data.num_classes:
        raise BdbError(f"target {cfg.target} is outside the classes of {data.name} (0..{data.num_classes - 1})")
    return resolved


def check_defense(name: str, settings: dict[str, Any], reg: Registry) -> None:
    """A defense is installed and its settings validate."""
    spec = reg.get("defense", name)
    build_config(spec.config_model(), settings, f"defense {name} settings")


def check_run_plan(store: RunStore, device: str, attacks: list[AttackRunConfig] = (),
                   defenses: list[tuple[str, dict[str, Any]]] = (), *, attack_run: str | None = None,
                   data_root: str | None = None, reg: Registry | None = None) -> list[AttackRunConfig]:
    """Validate everything a command will need; returns the resolved attack configs.

    Checks, in order: the device, the attack run id's form (for 'defend'), each defense and its
    settings, each attack run (method, settings, dataset, model, target), that the store is
    writable, and that the attack run exists, its attack is installed and it did not diverge.
    """
    reg = reg or registry()
    pick_device(device)
    if attack_run is not None:
        check_run_ref(attack_run)
    for name, settings in defenses:
        check_defense(name, settings, reg)
    resolved = [check_attack(cfg, reg, data_root) for cfg in attacks]
    store.check_writable()
    if attack_run is not None:
        run = store.load(attack_run)
        if run.kind != "attack":
            raise BdbError(f"{run.run_id} is a defense run; pass an attack run id (a-...)")
        check_run_attack(run, reg)
        if run.diverged:
            raise BdbError(f"attack run {run.run_id} diverged (non-finite loss or weights): nothing to defend; "
                           "retrain it with a lower --lr")
    return resolved

