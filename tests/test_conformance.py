"""The conformance suite: every installed attack and defense gets these checks for free."""

import pytest

from bdcore import testing as kit

ATTACKS = kit.installed("attack")
DEFENSES = kit.installed("defense")


def test_no_plugin_failed_to_load():
    kit.check_plugins_load()


def test_a_plugin_that_fails_to_load_fails_the_kit():
    import types

    from bdcore.hookspecs import hookimpl
    from bdcore.registry import load_registry

    mod = types.ModuleType("raises")
    mod.bdb_register_defenses = hookimpl(lambda: 1 / 0)
    mod.bdb_register_defenses.__name__ = "bdb_register_defenses"
    with pytest.raises(AssertionError, match="failed to load: raises"):
        kit.check_plugins_load(load_registry([("raises", mod)]))


@pytest.mark.parametrize("name", ATTACKS)
def test_attack_metadata(name):
    kit.check_metadata("attack", name)


@pytest.mark.parametrize("name", DEFENSES)
def test_defense_metadata(name):
    kit.check_metadata("defense", name)


@pytest.mark.parametrize("kind,name", [("attack", n) for n in ATTACKS] + [("defense", n) for n in DEFENSES])
def test_config_round_trips(kind, name):
    kit.check_config_roundtrip(kind, name)


@pytest.mark.parametrize("kind,name", [("attack", n) for n in ATTACKS] + [("defense", n) for n in DEFENSES])
def test_entry_point_and_config_import_without_torch(kind, name):
    kit.check_light_import(kind, name)


@pytest.mark.parametrize("name", ATTACKS)
def test_attack_tiny_run_is_reproducible(name, bdb_store):
    kit.check_attack_runs(name, bdb_store)


@pytest.mark.parametrize("name", DEFENSES)
def test_defense_tiny_run_is_reproducible(name, bdb_store):
    kit.check_defense_runs(name, bdb_store)


@pytest.mark.parametrize("name", DEFENSES)
def test_defense_inputs_are_sealed(name, bdb_store):
    kit.check_sealed_inputs(name, bdb_store)


@pytest.mark.parametrize("kind,name", [("dataset", n) for n in kit.installed("dataset")]
                         + [("model", n) for n in kit.installed("model")])
def test_datasets_and_models_register_lightly(kind, name):
    kit.check_metadata(kind, name)
    kit.check_light_import(kind, name)
