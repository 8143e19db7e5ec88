"""The bdb command: runs, reuse, results, and one-line errors for bad input."""

import json
import re

import pytest
from typer.testing import CliRunner

from bdcore_cli.main import app

runner = CliRunner()

TINY = ["--dataset", "digits", "--epochs", "2", "--batch-size", "64"]


def bdb(*args, runs=None):
    extra = ["--runs", str(runs)] if runs is not None and args[0] in ("attack", "defend", "bench", "results", "demo", "report") else []
    return runner.invoke(app, [*args, *extra])


def one_line_error(res, *fragments):
    assert res.exit_code == 2, (res.exit_code, res.stdout, res.stderr)
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert "Traceback" not in res.stderr
    for f in fragments:
        assert f in lines[0], lines[0]


@pytest.mark.parametrize("args,fragments", [
    (["attack", "nope"], ["unknown attack 'nope'", "Installed:"]),
    (["attack", "badnet", "--pratio", "0"], ["pratio", "(0, 1]"]),
    (["attack", "badnet", "--pratio", "1.5"], ["pratio"]),
    (["attack", "badnet", "--target", "10", *TINY], ["target 10 is outside"]),
    (["attack", "badnet", "--set", "wrong_key=1"], ["wrong_key: unknown setting"]),
    (["attack", "badnet", "--set", "patch_size=abc"], ["patch_size"]),
    (["attack", "badnet", "--set", "novalue"], ["--set expects key=value"]),
    (["attack", "badnet", "--dataset", "cifar1000"], ["unknown dataset 'cifar1000'"]),
    (["attack", "badnet", "--model", "resnet9000"], ["unknown model 'resnet9000'"]),
    (["attack", "badnet", "--train-set", "optimizer=rmsprop"], ["optimizer"]),
    (["defend", "ft", "--attack-run", "a-doesnotexist"], ["no finished run"]),
    (["defend", "nope", "--attack-run", "a-x"], ["unknown defense 'nope'"]),
    (["info", "nothing"], ["no attack, defense, dataset, model or analysis is called 'nothing'"]),
    (["list", "widgets"], ["cannot list 'widgets'"]),
])
def test_bad_input_is_one_line_and_exit_2(args, fragments, tmp_path):
    res = bdb(*args, runs=tmp_path)
    one_line_error(res, *fragments)
    assert not list((tmp_path / "runs").glob("*/COMPLETE")) if (tmp_path / "runs").exists() else True


def test_attack_defend_results_and_reuse(tmp_path):
    res = bdb("attack", "badnet", *TINY, "--json", runs=tmp_path)
    assert res.exit_code == 0, res.stderr
    first = json.loads(res.stdout)
    assert first["reused"] is False and first["run_id"].startswith("a-")
    assert {"cacc", "asr", "ra"} <= first.keys()
    again = json.loads(bdb("attack", "badnet", *TINY, "--json", runs=tmp_path).stdout)
    assert again["reused"] is True and again["run_id"] == first["run_id"] and again["asr"] == first["asr"]
    forced = json.loads(bdb("attack", "badnet", *TINY, "--json", "--force", runs=tmp_path).stdout)
    assert forced["reused"] is False
    assert forced["asr"] == first["asr"] and forced["cacc"] == first["cacc"]  # same seed, same numbers

    run_dir = tmp_path / "runs" / first["run_id"]
    for name in ("config.json", "meta.json", "metrics.json", "model.safetensors", "poison_indices.json", "COMPLETE"):
        assert (run_dir / name).is_file(), name
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["versions"]["plugins"]["bdb-attack-badnet"] == "0.1.0" and "torch" in meta["versions"]
    config = json.loads((run_dir / "config.json").read_text())
    assert config["attack_config"] == {"patch_size": 3, "corner": "bottom-right", "value": 255}

    res = bdb("defend", "ft", "--attack-run", first["run_id"][:6], "--set", "epochs=2", "--json", runs=tmp_path)
    assert res.exit_code == 0, res.stderr
    d = json.loads(res.stdout)
    assert d["before"]["asr"] == first["asr"] and 0 <= d["der"] <= 1

    text = bdb("defend", "ft", "--attack-run", first["run_id"], "--set", "epochs=2", runs=tmp_path)
    assert "DER" in text.stdout and "before" in text.stdout

    rows = json.loads(bdb("results", "--json", runs=tmp_path).stdout)
    assert {r["defense"] for r in rows} == {"none", "ft"}
    assert bdb("results", "--reindex", "--json", runs=tmp_path).stdout == bdb("results", "--json", runs=tmp_path).stdout


def test_corrupt_and_incomplete_runs_are_reported(tmp_path):
    res = json.loads(bdb("attack", "blended", *TINY, "--json", runs=tmp_path).stdout)
    run_dir = tmp_path / "runs" / res["run_id"]
    (run_dir / "metrics.json").write_text("{not json")
    one_line_error(bdb("defend", "ft", "--attack-run", res["run_id"], runs=tmp_path), "corrupt", "metrics.json")
    (run_dir / "COMPLETE").unlink()
    one_line_error(bdb("defend", "ft", "--attack-run", res["run_id"], runs=tmp_path), "incomplete")
    # rerunning without --force replaces the incomplete run
    again = json.loads(bdb("attack", "blended", *TINY, "--json", runs=tmp_path).stdout)
    assert again["reused"] is False and (run_dir / "COMPLETE").is_file()


GRID = """
name = "tiny"
datasets = ["digits"]
attacks = ["badnet", {name = "blended", set = {alpha_train = 0.3, alpha_test = 0.3}}]
defenses = ["none", {name = "ft", set = {epochs = 1}}]
[train]
epochs = 2
batch_size = 64
"""


def test_bench_runs_grid_and_resumes(tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text(GRID)
    res = bdb("bench", str(grid), "--json", runs=tmp_path)
    assert res.exit_code == 0, res.stderr
    rows = json.loads(res.stdout)
    assert [(r["attack"], r["defense"]) for r in rows] == [("badnet", "none"), ("badnet", "ft"),
                                                            ("blended", "none"), ("blended", "ft")]
    again = bdb("bench", str(grid), "--json", runs=tmp_path)
    assert json.loads(again.stdout) == rows and again.stderr.count(": reused ") == 4  # 2 attack runs + 2 defense runs
    text = bdb("bench", str(grid), runs=tmp_path)
    assert "leaderboard: tiny" in text.stdout and "blended" in text.stdout

    # the bench recorded its runs as grid "tiny": results and the report select them by name
    by_grid = json.loads(bdb("results", "--grid", "tiny", "--json", runs=tmp_path).stdout)
    assert sorted(r["run_id"] for r in by_grid) == sorted(r["run_id"] for r in rows)
    res = bdb("report", "--grid", "tiny", "--out", str(tmp_path / "tiny.html"), runs=tmp_path)
    assert res.exit_code == 0, res.stderr
    html = (tmp_path / "tiny.html").read_text()
    triggers = re.findall(r'<figure class="trigger" data-attack="([^"]+)"><div class="strip">.*?<img alt="[^"]*" '
                          r'src="data:image/png;base64,', html)
    assert triggers == ["badnet", "blended"]
    results = html[html.index('<section id="results">'):]
    for r in rows:  # every run's own numbers, as the harness stored them
        assert r["run_id"] in results and f"{100 * r['asr']:.2f}" in results and f"{100 * r['cacc']:.2f}" in results
    der = html[html.index('<section id="der-heatmap">'):html.index('<section id="ratio">')]
    for r in rows:  # 2 epochs at lr 0.01 leave some victims near chance (BadNets ~20%): no DER colour for those
        if r["defense"] == "ft":
            assert ("victim that never learned its task" in der) if r["victim_broken"] else (f"{r['der']:.3f}" in der)


@pytest.mark.parametrize("content,fragment", [
    ("attacks = [", "not valid TOML"),
    ('attacks = ["badnet"]\nratios = [0.1]', "ratios: unknown setting"),
    ('attacks = ["badnet"]\npratios = [2.0]', "outside (0, 1]"),
    ('attacks = ["nope"]', "unknown attack 'nope'"),
    ('defenses = ["ft"]', "attacks: Field required"),
])
def test_malformed_grid_files(tmp_path, content, fragment):
    grid = tmp_path / "g.toml"
    grid.write_text(content)
    one_line_error(bdb("bench", str(grid), runs=tmp_path), fragment)


def test_missing_grid_file(tmp_path):
    one_line_error(bdb("bench", str(tmp_path / "missing.toml"), runs=tmp_path), "not found")


def test_info_lists_settings():
    res = runner.invoke(app, ["info", "blended", "--json"])
    doc = json.loads(res.stdout)
    assert doc["kind"] == "DP dirty-label" and "Chen" in doc["paper"]
    settings = {s["name"]: s for s in doc["settings"]}
    assert settings["alpha_train"]["default"] == 0.2 and settings["alpha_train"]["type"] == "float"
    assert doc["schema"]["additionalProperties"] is False


def test_info_of_an_analysis_tool_shows_its_reference_defaults_and_settings():
    res = runner.invoke(app, ["info", "tsne"])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "reference tool: tsne" in text and "split mixed; n 1000; layer penultimate" in text
    assert "perplexity" in text and "30.0" in text
    res = runner.invoke(app, ["info", "analysis/gradcam", "--json"])
    doc = json.loads(res.stdout)
    assert doc["type"] == "analysis" and doc["reference"] == "gradcam"
    assert doc["defaults"] == {"split": "bd-test", "n": 200, "layer": "map"}
    assert [s["name"] for s in doc["settings"]] == ["images"] and doc["schema"]["additionalProperties"] is False
    res = runner.invoke(app, ["info", "network"])  # no samples, no settings
    assert res.exit_code == 0 and "defaults (--split, --n, --layer): none" in res.output
    assert "settings: none" in res.output


def test_leaderboard_marks_the_methods_with_a_known_limit():
    from rich.console import Console

    from bdcore_cli.main import _leaderboard_table

    row = {"dataset": "mnist5k", "model": "small-cnn", "attack": "htba", "pratio": 0.1, "defense": "ft", "cacc": 0.9,
           "asr": 0.01, "ra": 0.8, "der": None, "run_id": "d-1"}
    con = Console(width=200, record=True)
    con.print(_leaderboard_table([row], "lb", {"htba": "fails in miniature"}))
    text = con.export_text()
    assert "htba *" in text and "ft *" not in text


def test_results_table_drops_setting_columns_that_do_not_fit_instead_of_folding_them():
    from bdcore_cli.main import _fit_columns

    cols = [("attack", "attack"), ("rnp.a", "rnp.a"), ("rnp.bb", "rnp.bb"), ("asr", "ASR %")]
    rows = [["badnet", "0.1", "0.25", "99.00"], ["wanet", "0.7", "1", "0.00"]]
    # natural widths + 3 each: attack 9, rnp.a 8, rnp.bb 9, ASR % 8, plus 1 border = 35
    assert _fit_columns(cols, rows, 35, keep={"attack", "asr"}) == (cols, rows, [])
    shown, cells, hidden = _fit_columns(cols, rows, 34, keep={"attack", "asr"})
    assert hidden == [("rnp.bb", "rnp.bb")] and [k for k, _ in shown] == ["attack", "rnp.a", "asr"]
    assert cells == [["badnet", "0.1", "99.00"], ["wanet", "0.7", "0.00"]]
    shown, _, hidden = _fit_columns(cols, rows, 10, keep={"attack", "asr"})  # never the kept ones
    assert [k for k, _ in shown] == ["attack", "asr"] and len(hidden) == 2


def test_demo_end_to_end_in_miniature(tmp_path):
    # `bdb demo` as a user runs it (a subprocess), shrunk to digits and one victim epoch: ~12 s of CPU
    # (the default demo trains on mnist5k for 15 epochs, about a minute on 2 cores)
    import os
    import subprocess
    import sys

    runs = tmp_path / "store"
    res = subprocess.run([sys.executable, "-m", "bdcore_cli.main", "demo", "--dataset", "digits", "--epochs", "1",
                          "--device", "cpu", "--runs", str(runs)], capture_output=True, text=True, timeout=600,
                         env={**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "100"})
    assert res.returncode == 0, res.stderr[-3000:]
    out = res.stdout
    assert "leaderboard: demo" in out and "digits" in out, out
    rows = set()
    for line in out.splitlines():  # a row names its attack, then its defense (the layout depends on the width)
        words = re.findall(r"[\w-]+", line)
        attack = [w for w in words if w in ("badnet", "blended")]
        defense = [w for w in words if w in ("none", "ft", "sft")]
        if attack and defense:
            rows.add((attack[0], defense[0]))
    assert rows == {(a, d) for a in ("badnet", "blended") for d in ("none", "ft", "sft")}, out
    report = runs / "demo-report.html"
    assert f"report: {report}" in out
    html = report.read_text()
    assert html.startswith("<!DOCTYPE html>") and "bdb demo" in html and "data:image/png;base64," in html
    grid = json.loads((runs / "grids" / "demo.json").read_text())
    assert len(grid["runs"]) == 6 and all((runs / "runs" / r / "COMPLETE").is_file() for r in grid["runs"])
    assert json.loads((runs / "runs" / grid["runs"][0] / "config.json").read_text())["train"]["epochs"] == 1


def test_demo_default_grid_is_the_shipped_one(tmp_path):
    res = bdb("demo", "--show-grid", runs=tmp_path)
    assert res.exit_code == 0 and 'datasets = ["mnist5k"]' in res.stdout and 'preset = "quick"' in res.stdout
    assert "[train]" not in res.stdout  # the quick preset's 15 epochs unless --epochs says otherwise
