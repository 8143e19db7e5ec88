"""Fault injection through the real `bdb` command (issues 8 and 15): every fault ends in success or
one `error:` line, with nothing lost, nothing stale reused and nothing half-written.

Runs go to a temporary store; concurrency uses real processes; plugins that break are installed
as real distributions on a PYTHONPATH directory.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bdcore.runs.store import RunStore
from bdcore_cli.main import app

runner = CliRunner()
TINY = ["--dataset", "digits", "--epochs", "1", "--batch-size", "64"]
BDB = Path(sys.executable).with_name("bdb")


def bdb(*args: str, runs: Path | None = None):
    """The CLI in-process (typer's runner), with --runs for the commands that take it."""
    extra = ["--runs", str(runs)] if runs is not None else []
    return runner.invoke(app, [*args, *extra])


def bdb_proc(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """The CLI as a real process."""
    full = dict(os.environ, OMP_NUM_THREADS="1", **(env or {}))
    return subprocess.run([str(BDB), *args], capture_output=True, text=True, env=full, timeout=timeout)


def one_line_error(res, *fragments: str, code: int = 2) -> str:
    stderr = res.stderr
    rc = getattr(res, "exit_code", getattr(res, "returncode", None))
    assert rc == code, (rc, res.stdout, stderr)
    lines = [ln for ln in stderr.splitlines() if ln.strip() and not ln.startswith("warning:")]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    for f in fragments:
        assert f in lines[0], lines[0]
    return lines[0]


def strict_json(text: str):
    def no_constants(name):
        raise AssertionError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=no_constants)


def fake_run(store: RunStore, run_id: str, *, config=None, metrics=None, attack: str = "badnet") -> Path:
    """A finished attack run written through the store (no training)."""
    with store.write(run_id) as w:
        w.json("config.json", config if config is not None else
               {"attack": attack, "dataset": "digits", "model": "small-cnn", "pratio": 0.1, "seed": 0})
        w.json("meta.json", {"finished": "2026-01-01T00:00:00"})
        w.json("metrics.json", metrics if metrics is not None else {"cacc": 0.9, "asr": 0.95, "ra": 0.05})
    return store.path(run_id)


def raw_run(store: RunStore, run_id: str, config: str, metrics: str = '{"cacc": 0.9, "asr": 0.9, "ra": 0.1}') -> None:
    """A finished run with hand-written (possibly malformed) JSON files."""
    d = store.runs_dir / run_id
    d.mkdir(parents=True)
    (d / "config.json").write_text(config)
    (d / "meta.json").write_text('{"finished": "2026-01-01T00:00:00"}')
    (d / "metrics.json").write_text(metrics)
    (d / "COMPLETE").write_text("x")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One real tiny attack run (digits, 1 epoch) in a store shared by this module's tests."""
    root = tmp_path_factory.mktemp("faults-store")
    res = bdb("attack", "badnet", *TINY, "--json", runs=root)
    assert res.exit_code == 0, res.stderr
    return root, json.loads(res.stdout)["run_id"]


def make_site(tmp_path: Path, plugins: dict[str, tuple[str, str]]) -> dict:
    """Install fake plugin distributions: {package: (entry-point name, module source)} -> env with PYTHONPATH."""
    site = tmp_path / "site"
    for pkg, (ep, source) in plugins.items():
        mod = pkg.replace("-", "_")
        dist = site / f"{mod}-0.1.dist-info"
        dist.mkdir(parents=True)
        (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {pkg}\nVersion: 0.1\n")
        (dist / "entry_points.txt").write_text(f"[bdb]\n{ep} = {mod}\n")
        (site / f"{mod}.py").write_text(textwrap.dedent(source))
    return {"PYTHONPATH": str(site)}


# 1. concurrent writers of one run id ------------------------------------------------------------
def test_concurrent_force_runs_finish_cleanly_and_readers_never_see_a_partial_run(trained, tmp_path):
    root = tmp_path / "store"
    shutil.copytree(trained[0], root)
    run_id = trained[1]
    reader = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import os, time
        from bdcore.runs.store import RunStore
        store, bad, n, end = RunStore({str(root)!r}), [], 0, time.time() + 300
        while time.time() < end:
            try:
                run = store.load({run_id!r})
                assert run.metrics["asr"] is not None
                n += 1
            except Exception as exc:
                bad.append(repr(exc))
            if os.path.exists({str(tmp_path / 'stop')!r}):
                break
        print(n, len(bad), bad[:3])
    """)], stdout=subprocess.PIPE, text=True)
    env = dict(os.environ, OMP_NUM_THREADS="1", BDB_RUNS=str(root))
    writers = [subprocess.Popen([str(BDB), "attack", "badnet", *TINY, "--force", "--json"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    results = [(w.wait(timeout=300), *w.communicate()) for w in writers]
    (tmp_path / "stop").write_text("stop")
    reads, nbad, bad = reader.communicate(timeout=60)[0].split(" ", 2)
    for rc, stdout, stderr in results:
        assert rc == 0, stderr
        assert strict_json(stdout)["run_id"] == run_id
    assert int(nbad) == 0 and int(reads) > 0, bad
    assert [p.name for p in (root / "runs").iterdir() if p.name.startswith(".")] == []
    rows = strict_json(bdb("results", "--json", runs=root).stdout)
    assert [r["run_id"] for r in rows] == [run_id]


# 2. run identity: data and file contents -------------------------------------------------------
def test_run_id_depends_on_data_and_file_contents(tmp_path, monkeypatch):
    from PIL import Image

    from bdcore.api import resolve
    from bdcore.bench import harness
    from bdcore.config import AttackRunConfig

    monkeypatch.chdir(tmp_path)
    Image.new("RGB", (8, 8), (255, 0, 0)).save("trigger.png")
    cfg = AttackRunConfig(attack="blended", attack_config={"trigger_image": "trigger.png"}, dataset="digits")
    first = harness.resolve_attack_config(cfg)
    assert first.attack_config["trigger_image"] == str(tmp_path / "trigger.png")  # stored absolute
    assert list(first.input_files) == [str(tmp_path / "trigger.png")] and first.data_fingerprint
    Image.new("RGB", (8, 8), (0, 255, 0)).save("trigger.png")
    second = harness.resolve_attack_config(cfg)
    assert second.run_id() != first.run_id()

    # other data under another root gives another id, and a stored run refuses the other data
    digits = resolve.load_dataset("digits")
    other = type(digits)(**{**digits.__dict__, "x_train": digits.x_train.flip(0).contiguous()})
    monkeypatch.setitem(resolve._DATA_CACHE, ("digits", str(tmp_path)), other)
    moved = harness.resolve_attack_config(cfg, data_root=str(tmp_path))
    assert moved.data_fingerprint != second.data_fingerprint and moved.run_id() != second.run_id()
    from bdcore.runs.identity import check_fingerprint
    from bdcore.errors import BdbError

    with pytest.raises(BdbError, match="trained on other data"):
        check_fingerprint(second.data_fingerprint, other, "a-1")


def test_cli_run_stores_fingerprint_and_absolute_paths(trained):
    root, run_id = trained
    config = json.loads((root / "runs" / run_id / "config.json").read_text())
    assert len(config["data_fingerprint"]) == 16 and config["input_files"] == {}


# 3. the index heals ------------------------------------------------------------------------------
def test_junk_missing_and_outdated_index_heal(tmp_path):
    store = RunStore(tmp_path)
    fake_run(store, "a-01")
    fake_run(store, "a-02")
    (tmp_path / "index.sqlite").write_bytes(b"this is not a database" * 10)
    res = bdb("results", "--json", "--no-group", runs=tmp_path)
    assert res.exit_code == 0 and [r["run_id"] for r in strict_json(res.stdout)] == ["a-01", "a-02"]
    assert "rebuilt" in res.stderr
    assert bdb("results", "--reindex", "--json", "--no-group", runs=tmp_path).exit_code == 0
    (tmp_path / "index.sqlite").unlink()
    assert len(strict_json(bdb("results", "--json", "--no-group", runs=tmp_path).stdout)) == 2
    (store.path("a-02") / "COMPLETE").unlink()  # no longer a finished run: not listed
    assert [r["run_id"] for r in strict_json(bdb("results", "--json", "--no-group", runs=tmp_path).stdout)] == ["a-01"]
    # the run replaced behind the index's back (as a writer whose index update failed leaves it)
    (store.path("a-01") / "metrics.json").write_text('{"cacc": 0.5, "asr": 0.5, "ra": 0.5}')
    time.sleep(0.01)
    (store.path("a-01") / "COMPLETE").write_text("again")
    assert strict_json(bdb("results", "--json", "--no-group", runs=tmp_path).stdout)[0]["cacc"] == 0.5


def test_index_failure_after_saving_is_a_warning(tmp_path, monkeypatch):
    from bdcore.runs.index import RunIndex

    def broken(self, run):
        raise OSError("disk full")

    monkeypatch.setattr(RunIndex, "add", broken)
    res = bdb("attack", "badnet", *TINY, "--json", runs=tmp_path)
    assert res.exit_code == 0, res.stderr
    assert "is saved but the index was not updated" in res.stderr
    run_id = strict_json(res.stdout)["run_id"]
    monkeypatch.undo()
    assert [r["run_id"] for r in strict_json(bdb("results", "--json", runs=tmp_path).stdout)] == [run_id]


# 4. malformed runs are skipped and named -------------------------------------------------------
def test_malformed_runs_are_skipped_and_named(tmp_path):
    store = RunStore(tmp_path)
    fake_run(store, "a-0001")
    fake_run(store, "a-0002", attack="[/oops] [bold]x")
    raw_run(store, "a-0003", '{"attack": "badnet", "seed": 1e30}')
    raw_run(store, "a-0004", "[]")
    raw_run(store, "a-0005", "null")
    raw_run(store, "a-0006", '{"attack": "badnet", "seed": 0}', '{"cacc": "high", "asr": [1], "ra": null}')
    raw_run(store, "a-0007", '{"attack": "badnet", "seed": 1000000000000000000000000000000}')
    for args in (["results"], ["results", "--reindex"], ["results", "--json"]):
        res = bdb(*args, runs=tmp_path)
        assert res.exit_code == 0, (args, res.stderr, res.stdout)
        for bad in ("a-0003", "a-0004", "a-0005", "a-0006", "a-0007"):
            assert f"skipped {bad}" in res.stderr, (bad, res.stderr)
        assert "a-0001" in res.stdout and "a-0002" in res.stdout
    assert "[/oops]" in bdb("results", runs=tmp_path).stdout


# 5. fail before training --------------------------------------------------------------------------
def _nothing_trained(root: Path) -> bool:
    return not (root / "runs").is_dir() or not any((root / "runs").iterdir())


def test_store_that_is_a_file_fails_before_training(tmp_path):
    f = tmp_path / "a-file"
    f.write_text("x")
    t0 = time.perf_counter()
    one_line_error(bdb("attack", "badnet", *TINY, runs=f), "not a directory")
    assert time.perf_counter() - t0 < 10


@pytest.mark.skipif(shutil.which("chattr") is None, reason="needs chattr")
def test_immutable_store_fails_before_training(tmp_path):
    root = tmp_path / "store"
    (root / "runs").mkdir(parents=True)
    (root / "locks").mkdir()
    if subprocess.run(["chattr", "+i", str(root / "runs")], capture_output=True).returncode != 0:
        pytest.skip("chattr +i not permitted here")
    try:
        one_line_error(bdb("attack", "badnet", *TINY, runs=root), "not writable")
    finally:
        subprocess.run(["chattr", "-i", str(root / "runs")])


@pytest.mark.parametrize("grid,fragment", [
    ('attacks = ["badnet"]\ndefenses = [{name = "ft", set = {epochs = "many"}}]', "epochs"),
    ('attacks = ["badnet"]\ndefenses = [{name = "ft", set = {epoch = 1}}]', "did you mean 'epochs'"),
    ('attacks = ["badnet"]\ndatasets = ["digits", "nope"]', "unknown dataset 'nope'"),
    ('attacks = ["badnet"]\nmodels = ["small-cnn", "nope"]', "unknown model 'nope'"),
    ('attacks = ["badnet"]\ndatasets = ["digits"]\ntarget = 10', "target 10 is outside"),
    ('attacks = ["badnet", {name = "blended", set = {alpha_train = 7}}]\ndatasets = ["digits"]', "alpha_train"),
    ("attacks = []", "at least one attack"),
])
def test_bad_grid_fails_before_training(tmp_path, grid, fragment):
    (tmp_path / "g.toml").write_text(grid + '\n[train]\nepochs = 1\n')
    one_line_error(bdb("bench", str(tmp_path / "g.toml"), runs=tmp_path / "store"), fragment)
    assert _nothing_trained(tmp_path / "store")


def test_grid_accepts_one_attack_as_a_string(tmp_path):
    from bdcore.bench.grid import load_grid

    (tmp_path / "g.toml").write_text('attacks = "badnet"\ndefenses = "ft"')
    grid = load_grid(tmp_path / "g.toml")
    assert [a.name for a in grid.attacks] == ["badnet"] and [d.name for d in grid.defenses] == ["ft"]


# 6. run references are ids, never paths --------------------------------------------------------
@pytest.mark.parametrize("ref,fragment", [
    ("a-{id}/../../../x/a-evil", "not a run id"),
    ("../runs/{id}", "not a run id"),
    ("", "no run id given"),
    ("a-*", "not a run id"),
    ("a-[0-9]", "not a run id"),
])
def test_attack_run_must_be_an_id(trained, ref, fragment):
    root, run_id = trained
    one_line_error(bdb("defend", "ft", "--attack-run", ref.format(id=run_id[2:]), runs=root), fragment)


def test_device_is_checked_even_when_the_run_is_reused(trained):
    root, _ = trained
    one_line_error(bdb("attack", "badnet", *TINY, "--device", "gpu", runs=root), "unknown device 'gpu'")


# 7. plugins that exit, hang or fail ----------------------------------------------------------------
BROKEN_DEFENSE = """
import os

raise ImportError("this defense is broken on purpose")
"""
EXITS = "import sys\nsys.exit(3)\n"
HANGS = "import time\ntime.sleep(120)\n"


def test_plugins_that_exit_or_hang_do_not_take_commands_down(tmp_path):
    env = make_site(tmp_path, {"bdb-attack-exits": ("exits", EXITS), "bdb-attack-hangs": ("hangs", HANGS),
                               "bdb-defense-broken": ("broken", BROKEN_DEFENSE)})
    env["BDB_PLUGIN_TIMEOUT"] = "1"
    t0 = time.perf_counter()
    listed = bdb_proc("list", "attacks", "--json", env=env)
    seconds = time.perf_counter() - t0
    assert listed.returncode == 0, listed.stderr
    assert "badnet" in [r["name"] for r in json.loads(listed.stdout)]
    assert seconds < 15, seconds
    plugins = json.loads(bdb_proc("plugins", "--json", env=env).stdout)["plugins"]
    errors = {p["package"]: p["error"] for p in plugins if p["error"]}
    assert "SystemExit: 3" in errors["bdb-attack-exits"]
    assert "TimeoutError" in errors["bdb-attack-hangs"] and "BDB_PLUGIN_TIMEOUT" in errors["bdb-attack-hangs"]
    # the failure points at the plugin's own file and line, not at the core
    assert "bdb_defense_broken.py:4" in errors["bdb-defense-broken"]
    doctor = bdb_proc("doctor", env=env)
    assert doctor.returncode == 1 and "bdb-attack-hangs" in doctor.stderr
    # a failed plugin is visible by name
    info = bdb_proc("info", "broken", env=env)
    one_line_error(info, "defense 'broken' from package bdb-defense-broken failed to load",
                   "broken on purpose", "bdb_defense_broken.py:4")
    one_line_error(bdb_proc("defend", "broken", "--attack-run", "a-1", env=env),
                   "defense 'broken' from package bdb-defense-broken failed to load")
    debug = bdb_proc("info", "broken", env={**env, "BDB_DEBUG": "1"})
    assert "Traceback" in debug.stderr and 'bdb_defense_broken.py", line 4' in debug.stderr


TWIN = """
from bdcore.api.hookspecs import hookimpl
from bdcore.api.spec import AttackSpec


@hookimpl
def bdb_register_attacks():
    return [AttackSpec(name="twin", summary="a twin attack", paper="Nobody, 2026",
                       config="bdcore.config:NoSettings", factory="bdcore.api.attack:NoAttack")]
"""
HEAVY_FAILS = """
from bdcore.api.hookspecs import hookimpl
from bdcore.api.spec import AttackSpec


@hookimpl
def bdb_register_attacks():
    return [AttackSpec(name="heavy-fail", summary="fails only when its heavy module loads", paper="Nobody, 2026",
                       config="bdcore.config:NoSettings", factory="bdb_attack_heavy_fail_impl:Thing")]
"""


def test_duplicates_are_named_and_doctor_deep_imports_heavy_modules(tmp_path):
    env = make_site(tmp_path, {"bdb-attack-twin-a": ("twin", TWIN), "bdb-attack-twin-b": ("twin", TWIN),
                               "bdb-attack-heavy-fail": ("heavy-fail", HEAVY_FAILS)})
    (tmp_path / "site" / "bdb_attack_heavy_fail_impl.py").write_text("x = 1\nraise RuntimeError('heavy import broke')\n")
    listed = bdb_proc("list", "attacks", env=env)
    assert listed.returncode == 0 and "'twin' is registered by bdb-attack-twin-a and bdb-attack-twin-b" in listed.stderr
    one_line_error(bdb_proc("info", "twin", env=env), "registered by both")
    deep = bdb_proc("doctor", "--deep", env=env, timeout=300)
    assert deep.returncode == 1
    assert "heavy import broke" in deep.stderr and "bdb_attack_heavy_fail_impl.py:2" in deep.stderr


# 8. divergence ------------------------------------------------------------------------------------
def test_diverged_run_is_marked_and_json_stays_valid(tmp_path):
    res = bdb("attack", "badnet", *TINY, "--lr", "1e30", "--json", runs=tmp_path)
    assert res.exit_code == 0, res.stderr
    out = strict_json(res.stdout)
    assert out["diverged"] is True and out["cacc"] is None and out["asr"] is None
    assert "diverged" in res.stderr and "Traceback" not in res.stderr
    run_dir = tmp_path / "runs" / out["run_id"]
    for f in ("metrics.json", "config.json", "meta.json"):
        strict_json((run_dir / f).read_text())
    one_line_error(bdb("defend", "ft", "--attack-run", out["run_id"], runs=tmp_path), "diverged")
    strict_json(bdb("results", "--json", runs=tmp_path).stdout)


def test_tensors_in_run_json_are_stored_as_numbers_or_rejected(tmp_path):
    import torch

    from bdcore.errors import BdbError

    store = RunStore(tmp_path)
    fake_run(store, "d-01", metrics={"cacc": 0.9, "asr": 0.1, "ra": 0.8,
                                     "info": {"norms": torch.tensor([1.0, 2.0]), "k": torch.tensor(3)}})
    info = json.loads((store.path("d-01") / "metrics.json").read_text())["info"]
    assert info == {"norms": [1.0, 2.0], "k": 3}
    with pytest.raises(BdbError, match="save it as safetensors"):
        fake_run(store, "d-02", metrics={"info": {"big": torch.zeros(1000, 1000)}})
    assert not store.is_complete("d-02")


# 9. the smaller ones -------------------------------------------------------------------------------
def test_stale_temporary_directories_are_cleaned(tmp_path):
    store = RunStore(tmp_path)
    old = tmp_path / "runs" / ".a-0bad.killed"
    fresh = tmp_path / "runs" / ".a-0bad.writing"
    for d in (old, fresh):
        d.mkdir(parents=True)
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    assert bdb("results", "--reindex", runs=tmp_path).exit_code == 0
    assert not old.exists() and fresh.exists()
    del store


def test_a_fifo_in_place_of_a_run_file_does_not_hang_reindex(tmp_path):
    store = RunStore(tmp_path)
    fake_run(store, "a-01")
    d = fake_run(store, "a-02")
    (d / "config.json").unlink()
    os.mkfifo(d / "config.json")
    res = bdb_proc("results", "--reindex", "--json", env={"BDB_RUNS": str(tmp_path)}, timeout=60)
    assert res.returncode == 0 and [r["run_id"] for r in json.loads(res.stdout)] == ["a-01"]
    assert "skipped a-02" in res.stderr and "not a regular file" in res.stderr


def test_unexpected_errors_are_one_line_with_a_debug_hint(tmp_path, monkeypatch):
    import bdcore.reporting.results

    def boom(*a, **k):
        raise ValueError("something odd")

    monkeypatch.setattr(bdcore.reporting.results, "select", boom)
    line = one_line_error(bdb("results", runs=tmp_path), "ValueError: something odd", "BDB_DEBUG=1", code=1)
    assert line.startswith("error: ValueError")


def test_misspelt_setting_suggests_and_echoes_the_value(tmp_path):
    one_line_error(bdb("attack", "badnet", "--set", "patch_sise=3", runs=tmp_path), "patch_sise: unknown setting",
                   "did you mean 'patch_size'", "(got 3)")
    one_line_error(bdb("attack", "badnet", "--set", "patch_size=big", runs=tmp_path), "patch_size", "(got 'big')")
    assert not tmp_path.joinpath("runs").exists()  # nothing written for bad input


def test_tables_fit_the_terminal(tmp_path):
    store = RunStore(tmp_path)
    fake_run(store, "a-0123456789ab")
    for args in (["list", "attacks"], ["results"]):
        res = bdb_proc(*args, env={"COLUMNS": "80", "BDB_RUNS": str(tmp_path)})
        assert res.returncode == 0 and max(len(ln) for ln in res.stdout.splitlines()) <= 80, res.stdout
