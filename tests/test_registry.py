"""Plugin discovery: isolation of broken plugins, duplicate names, light listing."""

import json
import os
import subprocess
import sys
import textwrap
import types

import pytest

from bdcore.errors import BdbError
from bdcore.api.hookspecs import hookimpl
from bdcore.api.registry import load_registry
from bdcore.api.spec import AttackSpec


def _plugin(name, hooks):
    mod = types.ModuleType(name)
    for hname, fn in hooks.items():
        fn.__name__ = hname
        setattr(mod, hname, hookimpl(fn))
    return mod


def _attack(name):
    return AttackSpec(name=name, summary="a test attack", paper="Nobody, 2026", config="bdcore.config:NoSettings",
                      factory="bdcore.api.attack:NoAttack")


def test_broken_plugins_are_isolated():
    good = _plugin("good", {"bdb_register_attacks": lambda: [_attack("good-one")]})
    raises = _plugin("raises", {"bdb_register_attacks": lambda: 1 / 0})
    misspelt = _plugin("misspelt", {"bdb_register_atacks": lambda: [_attack("x")]})
    bad_spec = _plugin("badspec", {"bdb_register_attacks": lambda: [_attack("Bad Name")]})
    wrong_type = _plugin("wrongtype", {"bdb_register_defenses": lambda: [_attack("y")]})
    reg = load_registry([("good", good), ("raises", raises), ("misspelt", misspelt), ("badspec", bad_spec),
                         ("wrongtype", wrong_type)])
    assert "good-one" in reg.names("attack")
    assert "badnet" in reg.names("attack")  # installed plugins still load
    errors = {p.package: p.error for p in reg.broken}
    assert "ZeroDivisionError" in errors["raises"]
    assert "unknown hook" in errors["misspelt"] and "bdb_register_atacks" in errors["misspelt"]
    assert "invalid attack name" in errors["badspec"]
    assert "expected DefenseSpec" in errors["wrongtype"]
    assert "x" not in reg.names("attack") and "y" not in reg.names("defense")


def test_duplicate_names_are_an_error_on_use():
    a = _plugin("a", {"bdb_register_attacks": lambda: [_attack("twin")]})
    b = _plugin("b", {"bdb_register_attacks": lambda: [_attack("twin")]})
    reg = load_registry([("pkg-a", a), ("pkg-b", b)])
    with pytest.raises(BdbError, match="registered by both pkg-a and pkg-b"):
        reg.get("attack", "twin")


def test_unknown_name_lists_installed_and_suggests():
    reg = load_registry()
    with pytest.raises(BdbError, match=r"unknown attack 'badnets'\. Did you mean 'badnet'\?.*Installed: .*blended"):
        reg.get("attack", "badnets")


def test_model_families_resolve_by_prefix():
    reg = load_registry()
    assert reg.get("model", "timm:resnet18").name == "timm:"


def _run(args, env_extra=None):
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "bdcore_cli.main", *args], capture_output=True, text=True, env=env,
                          timeout=120)


@pytest.mark.parametrize("args,code,shown", [
    (["--help"], 0, "Usage: bdb"), (["list", "attacks"], 0, "badnet"), (["list", "defenses", "--json"], 0, '"name": "ft"'),
    (["plugins"], 0, "bdb-attack-badnet"), (["info", "badnet"], 0, "Gu et al.,"),
    (["info", "badnets"], 2, "error: no attack, defense, dataset, model or analysis is called 'badnets'"),
])
def test_listing_does_not_import_torch(args, code, shown):
    prog = (
        "import sys\n"
        f"sys.argv = ['bdb', *{args!r}]\n"
        "from bdcore_cli.main import app\n"
        "try:\n    app()\n    code = 0\nexcept SystemExit as e:\n    code = e.code or 0\n"
        "loaded = [m for m in sys.modules if m == 'torch' or m.startswith('torch.')]\n"
        "sys.stderr.write(f'\\nexit {code}, ' + ('TORCH-LOADED' if loaded else 'TORCH-FREE'))\n"
    )
    res = subprocess.run([sys.executable, "-c", prog], capture_output=True, text=True, timeout=120)
    *messages, last = [ln for ln in res.stderr.splitlines() if ln.strip()] or [""]
    assert last == f"exit {code}, TORCH-FREE", res.stderr[-2000:]
    if code:  # bad input: one error line, nothing on stdout
        assert len(messages) == 1 and messages[0].startswith(shown) and not res.stdout, res.stderr
    else:
        assert not messages and shown in res.stdout, res.stderr[-2000:]


def test_a_broken_installed_plugin_does_not_break_the_cli(tmp_path):
    site = tmp_path / "site"
    dist = site / "bdb_broken_demo-0.3.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: bdb-broken-demo\nVersion: 0.3\n")
    (dist / "entry_points.txt").write_text("[bdb]\nbroken = bdb_broken_demo\n")
    (site / "bdb_broken_demo.py").write_text(textwrap.dedent("""
        raise ImportError("this plugin is broken on purpose")
    """))
    env = {"PYTHONPATH": str(site)}
    listed = _run(["list", "attacks", "--json"], env)
    assert listed.returncode == 0
    assert "badnet" in [r["name"] for r in json.loads(listed.stdout)]
    plugins = _run(["plugins", "--json"], env)
    broken = [p for p in json.loads(plugins.stdout)["plugins"] if p["package"] == "bdb-broken-demo"]
    assert broken and "broken on purpose" in broken[0]["error"]
    doctor = _run(["doctor"], env)
    assert doctor.returncode == 1 and "bdb-broken-demo" in doctor.stderr


def test_known_limits_are_shown_by_list_and_info():
    # a method that is faithful to its paper but not shown to work in miniature says so where it is listed
    listed = _run(["list", "defenses", "--json"])
    caveats = {r["name"]: r["caveat"] for r in json.loads(listed.stdout)}
    assert caveats["dbd"] and caveats["teco"] and not caveats["ft"]
    table = _run(["list", "defenses"])
    assert "with a known limit (see 'bdb info NAME'):" in table.stdout and "dbd" in table.stdout.split("known limit")[1]
    info = _run(["info", "htba"])
    assert info.returncode == 0 and "known limit: no backdoor forms" in " ".join(info.stdout.split())
    assert json.loads(_run(["info", "badnet", "--json"]).stdout)["caveat"] == ""


def test_a_caveat_is_one_line():
    from bdcore.api.spec import DefenseSpec

    spec = DefenseSpec(name="x", summary="s", paper="p", stage="post", config="m:C", factory="m:F",
                       caveat="first\nsecond")
    with pytest.raises(BdbError, match="caveat must be one line"):
        spec.check()


def test_list_is_one_line_per_method_at_the_terminals_width():
    listed = _run(["list", "attacks"], {"COLUMNS": "80"})
    lines = listed.stdout.splitlines()
    assert listed.returncode == 0 and max(map(len, lines)) <= 80
    names = [r["name"] for r in json.loads(_run(["list", "attacks", "--json"]).stdout)]
    rows = [ln for ln in lines if ln.startswith("│")]
    assert len(rows) == len(names) and all(n in row for n, row in zip(names, rows))
    assert "htba *" in listed.stdout  # the known-limit marker
    long = _run(["list", "attacks", "--long"], {"COLUMNS": "200"})
    assert "Gu et al.," in long.stdout and "Gu et al.," not in listed.stdout  # the paper column
