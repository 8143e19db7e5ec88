"""plugin_template/: every kind renders, installs and is found by `bdb list`; rendered tests pass.

The rendered plugins are installed with `pip install --target` into a private directory that only
the subprocesses see (PYTHONPATH), never into the shared environment. The rendered attack, dataset,
model and analysis plugins' own tests run here too. The defense's need a 15-epoch BadNets model
(about a minute), so instead it is run from the command line, as its author would first try it: a
one-epoch BadNets run on digits, then `bdb defend` on it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RENDER = ROOT / "plugin_template" / "render.py"
NAMES = {"attack": "tpl-checker", "defense": "tpl-probe", "dataset": "tpl-shapes", "model": "tpl-lenet",
         "analysis": "tpl-confidence"}
SETTINGS = {
    "attack": ["size", "corner"],
    "defense": ["reinit", "epochs", "lr", "batch_size", "weight_decay", "augment"],
    "analysis": ["bins", "confident"],
}
PLURAL = {"analysis": "analyses"}  # `bdb list <plural>`; the other kinds add an s


def render(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(RENDER), *args], capture_output=True, text=True, timeout=60)


def env_with(site: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return env


def bdb(site: Path, *args: str) -> subprocess.CompletedProcess:
    res = subprocess.run([sys.executable, "-m", "bdcore_cli.main", *args], capture_output=True, text=True,
                         timeout=120, env=env_with(site))
    assert res.returncode == 0, f"bdb {' '.join(args)} failed: {res.stderr[-2000:]}"
    return res


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> tuple[Path, dict[str, Path], Path]:
    """Every kind rendered, then installed together into a private target directory."""
    root = tmp_path_factory.mktemp("template")
    dirs = {}
    for kind, name in NAMES.items():
        res = render("--kind", kind, "--name", name, "--dest", str(root / "src"), "--author", 'Ada "Tester"')
        assert res.returncode == 0, res.stderr
        dirs[kind] = root / "src" / f"bdb-{kind}-{name}"
        assert str(dirs[kind]) in res.stdout and "pip install -e ." in res.stdout
    site = root / "site"
    res = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
         "--disable-pip-version-check", "--target", str(site), *map(str, dirs.values())],
        capture_output=True, text=True, timeout=300,
    )
    assert res.returncode == 0, f"pip install failed: {res.stderr[-3000:]}"
    return root, dirs, site


def test_rendered_files_are_complete(rendered):
    _, dirs, _ = rendered
    for kind, d in dirs.items():
        name, package = NAMES[kind], f"bdb_{kind}_{NAMES[kind].replace('-', '_')}"
        py = sorted((d / package).glob("*.py")) + sorted((d / "tests").glob("*.py"))
        assert {p.name for p in (d / "tests").glob("*.py")} == {f"test_{name.replace('-', '_')}.py"}
        for f in py + [d / "pyproject.toml", d / "README.md"]:
            text = f.read_text()
            assert "{{" not in text, f"unrendered placeholder in {f}"
            if f.suffix == ".py":
                compile(text, str(f), "exec")
        meta = tomllib.loads((d / "pyproject.toml").read_text())["project"]
        assert meta["name"] == f"bdb-{kind}-{name}"
        assert meta["entry-points"]["bdb"] == {name: package}
        assert meta["authors"] == [{"name": 'Ada "Tester"'}]


@pytest.mark.parametrize("kind", list(NAMES))
def test_bdb_lists_the_installed_plugin(kind, rendered):
    _, _, site = rendered
    name = NAMES[kind]
    kinds = PLURAL.get(kind, f"{kind}s")
    rows = {r["name"]: r for r in json.loads(bdb(site, "list", kinds, "--json").stdout)}
    assert name in rows, f"bdb list {kinds} does not show {name}: {sorted(rows)}"
    assert rows[name]["package"] == f"bdb-{kind}-{name}"
    assert rows[name]["version"] == "0.1.0"
    if kind in SETTINGS:  # the settings come from the installed config model
        info = json.loads(bdb(site, "info", f"{kind}/{name}", "--json").stdout)
        assert [s["name"] for s in info["settings"]] == SETTINGS[kind]
        assert all(s["description"] for s in info["settings"])


@pytest.mark.parametrize("kind", ["attack", "dataset", "model", "analysis"])
def test_rendered_plugin_tests_pass(kind, rendered):
    # CPU time with OMP_NUM_THREADS=1 (most of it training): attack ~36 s (a 5-epoch miniature and
    # its clean reference, plus the kit's two 1-epoch reproducibility runs), dataset ~6 s, model ~4 s,
    # analysis ~9 s (a 1-epoch BadNets run on digits, the tool run twice on it)
    root, dirs, site = rendered
    res = subprocess.run(
        [sys.executable, "-m", "pytest", str(dirs[kind] / "tests"), "-q", "-p", "no:cacheprovider",
         "--basetemp", str(root / f"pytest-{kind}")],
        cwd=root, env=env_with(site), capture_output=True, text=True, timeout=600,
    )
    summary = res.stdout.strip().splitlines()[-1] if res.stdout.strip() else ""
    assert res.returncode == 0, f"rendered {kind} tests failed:\n{res.stdout[-4000:]}\n{res.stderr[-2000:]}"
    assert re.match(r"^\d+ passed(, \d+ warnings?)? in ", summary), f"unexpected summary: {summary!r}"


def test_rendered_defense_defends_a_stored_attack_run(rendered, bdb_store):
    # ~8 s of CPU with OMP_NUM_THREADS=1, most of it the command's start-up (torch, the registry). The
    # attack run is the kit's tiny BadNets run that check_defense_runs also uses (usually stored already).
    from bdcore import testing as kit

    _, _, site = rendered
    attacked = kit.tiny_attack_run("badnet", bdb_store, seed=1)
    res = json.loads(bdb(site, "defend", NAMES["defense"], "--attack-run", attacked.run_id, "--preset", "quick",
                         "--set", "epochs=2", "--device", "cpu", "--runs", str(bdb_store.root), "--json").stdout)
    assert res["run_id"].startswith("d-")
    assert res["before"]["asr"] == attacked.metrics["asr"] and res["before"]["cacc"] == attacked.metrics["cacc"]
    for k in ("cacc", "asr", "ra", "der"):
        assert 0.0 <= res[k] <= 1.0, (k, res)
    run = bdb_store.load(res["run_id"])
    assert run.file("model.safetensors").is_file() and run.metrics["der"] == res["der"]
    meta = json.loads(run.file("meta.json").read_text())
    assert meta["versions"]["plugins"][f"bdb-defense-{NAMES['defense']}"] == "0.1.0"
    info = run.metrics["info"]
    assert info["head"] and {"val_acc_before", "val_acc_after"} <= info.keys()  # what the template's run() returns


@pytest.mark.parametrize("args", [
    ["--kind", "attack", "--name", "My_Thing"],
    ["--kind", "attack", "--name", "2fast"],
    ["--kind", "attack", "--name", "double--dash"],
    ["--kind", "defense", "--name", "trailing-"],
    ["--kind", "widget", "--name", "fine"],
    ["--kind", "attack"],
])
def test_renderer_rejects_bad_arguments_in_one_line(args, tmp_path):
    res = render(*args, "--dest", str(tmp_path / "out"))
    assert res.returncode != 0
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert res.stdout == ""
    assert not (tmp_path / "out").exists()


def test_renderer_refuses_an_existing_directory(tmp_path):
    first = render("--kind", "model", "--name", "tpl-twice", "--dest", str(tmp_path))
    assert first.returncode == 0, first.stderr
    readme = tmp_path / "bdb-model-tpl-twice" / "README.md"
    readme.write_text("my edits")
    again = render("--kind", "model", "--name", "tpl-twice", "--dest", str(tmp_path))
    assert again.returncode != 0
    assert len(again.stderr.strip().splitlines()) == 1 and "already exists" in again.stderr
    assert readme.read_text() == "my edits"
