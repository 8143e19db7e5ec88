"""Publishing for real: wheels from ./dev.sh wheels install into a fresh environment, offline.

The fresh virtual environment sees the project's third-party dependencies (torch, pydantic, ...)
through a directory of links that leaves out bdcore and every bdb plugin, so pip must take
bdcore from the wheelhouse as a dependency of the plugin wheel, exactly as `pip install
bdb-attack-wanet` would from an index. About 30 s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bdcore_cli.main import app

ROOT = Path(__file__).resolve().parents[1]
OURS = ("bdcore", "bdb_", "bdb-", "__editable__", "_bdcore")


def _shadow_site(dest: Path) -> Path:
    """Links to everything in this environment's site-packages except bdcore, bdb plugins and .pth files."""
    site = Path(sysconfig.get_paths()["purelib"])
    dest.mkdir()
    for entry in site.iterdir():
        if entry.name.startswith(OURS) or entry.suffix == ".pth":
            continue
        (dest / entry.name).symlink_to(entry)
    return dest


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)
    assert res.returncode == 0, f"{cmd}: {res.stdout[-2000:]}{res.stderr[-2000:]}"
    return res


@pytest.mark.slow
def test_plugin_wheel_pulls_in_bdcore_in_a_fresh_venv(tmp_path):
    wheelhouse = tmp_path / "wheelhouse"
    env = dict(os.environ, WHEELHOUSE=str(wheelhouse))
    _run(["bash", "dev.sh", "wheels", ".", "plugins/bdb-attack-wanet", "plugins/bdb-attack-badnet"], cwd=ROOT, env=env)
    assert {p.name.split("-")[0] for p in wheelhouse.iterdir()} == {"bdcore", "bdb_attack_wanet", "bdb_attack_badnet"}

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])  # pip runs from outside (pip --python)
    py = venv / "bin" / "python"
    purelib = _run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    Path(purelib, "_project_deps.pth").write_text(str(_shadow_site(tmp_path / "deps")) + "\n")
    assert subprocess.run([str(py), "-c", "import bdcore"], cwd=tmp_path, capture_output=True).returncode != 0

    pip = [sys.executable, "-m", "pip", "--python", str(py)]
    res = _run([*pip, "install", "--no-index", "--find-links", str(wheelhouse), "bdb-attack-wanet"], cwd=tmp_path)
    assert "bdcore-0.1.0" in res.stdout and "bdb-attack-wanet-0.1.0" in res.stdout, res.stdout
    listed = json.loads(_run([str(venv / "bin" / "bdb"), "list", "attacks", "--json"], cwd=tmp_path).stdout)
    assert sorted(r["name"] for r in listed) == ["none", "wanet"]

    # bdb install maps a method id to its package (here found in the local wheelhouse) and runs pip
    # (the fresh venv has no pip of its own; it sees this environment's through the links)
    _run([str(venv / "bin" / "bdb"), "install", "badnet", "--find-links", str(wheelhouse), "--no-index"], cwd=tmp_path)
    listed = json.loads(_run([str(venv / "bin" / "bdb"), "list", "attacks", "--json"], cwd=tmp_path).stdout)
    assert sorted(r["name"] for r in listed) == ["badnet", "none", "wanet"]


def test_install_names_both_packages_when_the_id_is_ambiguous(tmp_path):
    res = CliRunner().invoke(app, ["install", "nothing-like-it", "--find-links", str(tmp_path)])
    assert res.exit_code == 2
    assert "bdb-attack-nothing-like-it or bdb-defense-nothing-like-it" in res.stderr and "--kind" in res.stderr
    bad = CliRunner().invoke(app, ["install", "../evil"])
    assert bad.exit_code == 2 and "not a method id" in bad.stderr


def test_template_publish_step_names_a_tool_that_is_installed():
    readme = (ROOT / "plugin_template" / "README.md").read_text()
    assert "python -m build" not in readme and "pip wheel . --no-deps" in readme
