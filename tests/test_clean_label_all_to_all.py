"""Issue 26: a clean-label attack keeps every label, so it has no all-to-all backdoor. Asking for one is a
one-line error before anything is trained or written (the harness checks the spec's kind, a config's
`clean_label` setting and the attack's own `clean_label`), not a run with a meaningless ASR."""

import pytest
from typer.testing import CliRunner

from bdcore_cli.main import app
from bdcore.testing import assert_one_line_error

runner = CliRunner()


@pytest.mark.parametrize("attack", ["sig", "lc", "ctrl", "htba", "narcissus"])
def test_a_clean_label_attack_with_all_to_all_is_one_error_line_and_writes_nothing(tmp_path, attack):
    runs = tmp_path / "store"
    result = runner.invoke(app, ["attack", attack, "--all-to-all", "--epochs", "1", "--runs", str(runs)])
    assert_one_line_error(result, f"attack '{attack}' is clean-label", "drop --all-to-all")
    assert not runs.exists() or not any(runs.rglob("*.json"))


def test_a_clean_label_setting_counts_too(tmp_path):
    runs = tmp_path / "store"
    result = runner.invoke(app, ["attack", "refool", "--set", "clean_label=true", "--all-to-all", "--runs", str(runs)])
    assert_one_line_error(result, "attack 'refool' is clean-label")
    assert not runs.exists() or not any(runs.rglob("*.json"))


def test_the_harness_refuses_it_without_the_cli(tmp_path):
    from bdcore.config import AttackRunConfig, TrainRecipe
    from bdcore.errors import BdbError
    from bdcore.bench.harness import run_attack
    from bdcore.runs.store import RunStore

    store = RunStore(tmp_path / "store")
    cfg = AttackRunConfig(attack="sig", all_to_all=True, train=TrainRecipe(epochs=1))
    with pytest.raises(BdbError, match="clean-label"):
        run_attack(cfg, store=store, device="cpu")
    assert not store.runs_dir.exists() or not any(store.runs_dir.iterdir())
