"""Feature tools on a tiny BadNets run (and an FT defense run); TAC pinned on a hand-made model."""

import pytest
import torch
from torch import nn

from bdcore.testing import analysis_context, check_analysis, load_attack_run


@pytest.fixture(scope="module")
def attack(backdoored_run):
    return backdoored_run("badnet")


def test_tac_of_an_identity_layer_is_the_trigger_norm_per_channel():
    from bdb_analysis_features.tools import trigger_activation_change

    conv = nn.Conv2d(2, 2, 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.eye(2).view(2, 2, 1, 1))
    x = torch.rand(5, 2, 4, 4)
    xt = x.clone()
    xt[:, 0, :2, :2] += 0.5  # a 2x2 patch on channel 0 only: || diff ||_2 = sqrt(4 * 0.25) = 1
    tac = trigger_activation_change(conv, lambda m, v: m(v), x, xt)
    assert tac.tolist() == pytest.approx([1.0, 0.0], abs=1e-6)


def test_tsne_separates_badnets_poison_better_than_chance(attack, bdb_store, tmp_path):
    nums = check_analysis("tsne", attack.run_id, bdb_store, tmp_path, n=400)
    assert nums["layer"] == "penultimate" and nums["poisoned"] > 10
    # k-NN AUROC of poisoned vs clean, chance 0.5; measured 0.99 (embedding) and 0.999 (features)
    assert nums["poison_separation_embedding"] > 0.9
    assert nums["poison_separation_features"] > 0.9


def test_tac_is_larger_on_the_backdoored_model_than_on_a_clean_one(attack, clean_run, bdb_store, tmp_path):
    clean = clean_run
    bd = check_analysis("tac", attack.run_id, bdb_store, tmp_path, n=200)
    # the same triggered images through a model trained without poison
    from bdb_analysis_features.tools import tac_of

    ctx = analysis_context(attack.run_id, bdb_store)
    _, tac_clean = tac_of(ctx, load_attack_run(clean.run_id, bdb_store)[4], n=200)
    assert bd["max"] > 2 * float(tac_clean.max())


@pytest.mark.parametrize("tool", ["neuron-activation", "top-activated", "activation-distribution", "feature-maps"])
def test_neuron_tools_run(tool, attack, bdb_store, tmp_path):
    nums = check_analysis(tool, attack.run_id, bdb_store, tmp_path, n=300)
    assert nums["layer"] == "net.features"
    if tool == "top-activated":
        assert nums["poisoned_share_top"] > nums["poisoned_share_split"]


def test_tac_on_a_defense_run_compares_with_the_backdoored_model(attack, defended_run, bdb_store, tmp_path):
    defense = defended_run("ft", attack.run_id, settings={"epochs": 2, "lr": 0.1})
    nums = check_analysis("tac", defense.run_id, bdb_store, tmp_path, n=100, layer="net.features.4")
    assert nums["layer"] == "net.features.4" and "max_before" in nums


def test_umap_separates_badnets_poison(attack, bdb_store, tmp_path):
    pytest.importorskip("umap", reason="the analysis extra (umap-learn) is not installed: pip install 'bdcore[analysis]'")
    nums = check_analysis("umap", attack.run_id, bdb_store, tmp_path, n=400)
    assert nums["poison_separation_embedding"] > 0.8  # measured 0.87
    assert nums["poison_separation_features"] > 0.9


def test_umap_without_its_extra_names_it(attack, bdb_store, tmp_path, monkeypatch):
    import sys

    from bdcore import BdbError

    monkeypatch.setitem(sys.modules, "umap", None)  # import umap -> ImportError
    with pytest.raises(BdbError, match=r"pip install 'bdcore\[analysis\]'"):
        check_analysis("umap", attack.run_id, bdb_store, tmp_path, n=50)
