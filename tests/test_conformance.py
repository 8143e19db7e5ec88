"""The conformance suite: every installed attack and defense gets these checks for free."""

import pytest

from bdcore import testing as kit

ATTACKS = kit.installed("attack")
DEFENSES = kit.installed("defense")


def test_no_plugin_failed_to_load():
    kit.check_plugins_load()


def test_a_plugin_that_fails_to_load_fails_the_kit():
    import types

    from bdcore.api.hookspecs import hookimpl
    from bdcore.api.registry import load_registry

    mod = types.ModuleType("raises")
    mod.bdb_register_defenses = hookimpl(lambda: 1 / 0)
    mod.bdb_register_defenses.__name__ = "bdb_register_defenses"
    with pytest.raises(AssertionError, match="failed to load: raises"):
        kit.check_plugins_load(load_registry([("raises", mod)]))


def _do_nothing_defense(stage: str):
    """A deliberately empty defense: the backdoored model as it got it, or the same score for every sample."""
    from bdcore import Defense, DefenseOutput

    class DoNothing(Defense):
        def run(self, inputs):
            if stage == "detect-data":
                return DefenseOutput(scores=inputs.train.y.float() * 0)
            return DefenseOutput(model=inputs.model)

    return DoNothing


@pytest.mark.parametrize("stage", ["post", "detect-data"])
def test_a_defense_that_does_nothing_fails_the_kit(stage, bdb_store):
    import types

    from bdcore import DefenseSpec, MethodConfig, hookimpl
    from bdcore.api.registry import load_registry

    class NoSettings(MethodConfig):
        pass

    mod = types.ModuleType("empty")
    spec = DefenseSpec(name="empty", summary="returns what it got", paper="none, a test of the kit itself",
                       stage=stage, config=NoSettings, factory=_do_nothing_defense(stage))
    mod.bdb_register_defenses = hookimpl(lambda: [spec])
    mod.bdb_register_defenses.__name__ = "bdb_register_defenses"
    with pytest.raises(AssertionError, match="unchanged|same score"):
        kit.check_defense_acts("empty", bdb_store, reg=load_registry([("empty", mod)]))


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


# -- every package under plugins/ is installed and registered --------------------------------------
# A plugin that failed to install (or was never installed) has no entry point, so kit.installed() never
# lists it and none of the checks above run for it: it would drop out of the suite silently.

def _plugin_folders() -> list:
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "plugins"
    return sorted(p.parent for p in root.glob("*/pyproject.toml"))


def _normal(dist: str) -> str:
    import re

    return re.sub(r"[-_.]+", "-", dist).lower()


@pytest.mark.parametrize("folder", _plugin_folders(), ids=lambda p: p.name)
def test_every_plugin_folder_is_installed_and_registered(folder):
    import importlib.metadata
    import importlib.util
    import tomllib
    from pathlib import Path

    from bdcore.api.registry import registry

    project = tomllib.loads((folder / "pyproject.toml").read_text())["project"]
    name, version = project["name"], project["version"]
    declared = project.get("entry-points", {}).get("bdb", {})
    assert declared, f"{folder.name}: pyproject.toml declares no entry point in the group 'bdb'"
    try:
        dist = importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        pytest.fail(f"{name} is not installed: pip install -e plugins/{folder.name} (./dev.sh setup does)")
    assert dist.version == version, f"{name}: installed {dist.version}, the source says {version}: reinstall it"
    installed = {ep.name: ep.value for ep in dist.entry_points if ep.group == "bdb"}
    assert installed == declared, f"{name}: installed entry points {installed}, pyproject.toml declares {declared}"
    for module in declared.values():  # the checkout's code, not a stale copy installed from elsewhere
        origin = importlib.util.find_spec(module.split(":")[0]).origin
        assert origin and folder in Path(origin).resolve().parents, \
            f"{name}: {module} is imported from {origin}, not from {folder}: pip install -e {folder}"

    reg = registry()
    infos = {p.entry_point: p for p in reg.plugins if _normal(p.package) == _normal(name)}
    assert infos.keys() == declared.keys(), f"{name}: the registry found entry points {sorted(infos)}"
    registered = {}
    for ep, info in infos.items():
        assert info.error is None, f"{name} ({ep}) is broken: {info.error}"
        assert info.registered, f"{name} ({ep}) registered nothing"
        for kind, names in info.registered.items():
            registered.setdefault(kind, []).extend(names)
    parts = name.split("-")
    if parts[0] == "bdb" and parts[1] in ("attack", "defense"):  # bdb-attack-<m> / bdb-defense-<m> register <m>
        method = "-".join(parts[2:])
        assert method in registered.get(parts[1], []), \
            f"{name} does not register the {parts[1]} {method!r}: {registered}"
    for kind, names in registered.items():  # and owns each name it registers (no other package shadows it)
        for n in names:
            owner = reg.get(kind, n).package
            assert _normal(owner) == _normal(name), f"{kind} {n!r} of {name} resolves to {owner}"
            assert (kind, n) not in reg.conflicts, f"{kind} {n!r} is registered by {reg.conflicts[(kind, n)]}"
