"""metrics and confusion-matrix on a tiny BadNets run and an FT defense run."""

import json

import numpy as np
import pytest

from bdcore.testing import check_analysis


@pytest.fixture(scope="module")
def runs(backdoored_run, defended_run):
    attack = backdoored_run("badnet")
    return attack, defended_run("ft", attack.run_id, settings={"epochs": 2, "lr": 0.1})


def test_confusion_counts_are_pinned():
    from bdb_analysis_metrics.tools import confusion

    m = confusion(np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 2, 0, 0]), 3)
    assert m.tolist() == [[1, 1, 0], [0, 1, 0], [2, 0, 1]]


def test_confusion_matrix_of_the_backdoor_fills_the_target_column(runs, bdb_store, tmp_path):
    attack, _ = runs
    clean = check_analysis("confusion-matrix", attack.run_id, bdb_store, tmp_path)
    assert clean["n"] == 1000 and clean["accuracy"] == pytest.approx(attack.metrics["cacc"])
    bd = check_analysis("confusion-matrix", attack.run_id, bdb_store, tmp_path, split="bd-test")
    m = np.array(bd["matrix"])
    assert m.sum() == bd["n"] and m[:, 0].sum() / m.sum() == pytest.approx(attack.metrics["asr"])
    assert bd["target_column_share"] > 0.8
    assert m[0].sum() == 0  # target-class images are not in the backdoor test set


def test_metrics_radar_has_the_attack_and_its_defense(runs, bdb_store, tmp_path):
    attack, defense = runs
    nums = check_analysis("metrics", defense.run_id, bdb_store, tmp_path)
    assert nums["der"] == pytest.approx(defense.metrics["der"]) and nums["asr"] == pytest.approx(defense.metrics["asr"])
    undefended = nums["runs"]["no defense"]
    assert undefended["der"] is None and undefended["rir"] is None  # an undefended model has none
    assert undefended["asr"] == pytest.approx(attack.metrics["asr"])
    assert defense.run_id in nums["run_ids"].values()
    on_attack = check_analysis("metrics", attack.run_id, bdb_store, tmp_path)
    assert on_attack["cacc"] == pytest.approx(attack.metrics["cacc"]) and on_attack["der"] is None


def test_bdb_analyze_shows_a_missing_score_as_a_dash(runs, bdb_store, tmp_path):
    from typer.testing import CliRunner

    from bdcore_cli.main import app

    attack, _ = runs
    args = ["analyze", "metrics", "--run", attack.run_id, "--out", str(tmp_path / "m.png"),
            "--runs", str(bdb_store.root)]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    rows = [[c.strip() for c in ln.split("│")[1:-1]] for ln in r.output.splitlines() if ln.startswith("│")]
    cells = {row[0]: row[1] for row in rows}
    assert (cells["der"], cells["rir"], cells["cacc"]) == ("-", "-", f"{attack.metrics['cacc']:.4g}")
    assert json.loads(CliRunner().invoke(app, [*args, "--json"]).output)["der"] is None
