"""Weight and loss-surface tools: math pinned on known layers and a known quadratic; each tool
runs on a tiny BadNets run and an FT defense run."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from bdcore.testing import analysis_context, check_analysis


@pytest.fixture(scope="module")
def attack(backdoored_run):
    return backdoored_run("badnet")


def test_uclc_of_a_known_conv_and_bn():
    from bdb_analysis_weights.lipschitz import uclc

    conv = nn.Conv2d(3, 2, 3, bias=False)
    bn = nn.BatchNorm2d(2, eps=0.0)
    with torch.no_grad():
        conv.weight[0].fill_(0.5)  # rank one (3 x 9) of ones * 0.5: spectral norm 0.5 * sqrt(27)
        conv.weight[1].zero_()
        conv.weight[1, 0, 1, 1] = -2.0
        bn.weight.copy_(torch.tensor([2.0, 1.0]))
        bn.running_var.copy_(torch.tensor([16.0, 1.0]))
    assert uclc(conv).tolist() == pytest.approx([0.5 * math.sqrt(27), 2.0], rel=1e-5)
    assert uclc(conv, bn).tolist() == pytest.approx([0.5 * math.sqrt(27) * 2 / 4, 2.0], rel=1e-5)


def test_lanczos_recovers_a_known_spectrum():
    from bdb_analysis_weights.hessian import lanczos

    eig = torch.tensor([5.0, 2.0, 1.0, 0.5, -1.0, 0.1])
    q, _ = torch.linalg.qr(torch.randn(6, 6, generator=torch.Generator().manual_seed(0)))
    a = q @ torch.diag(eig) @ q.T
    evals, weights = lanczos(lambda v: a @ v, 6, 6, torch.Generator().manual_seed(1))
    assert sorted(evals.tolist()) == pytest.approx(sorted(eig.tolist()), abs=1e-4)
    assert weights.sum() == pytest.approx(1.0)


def test_hessian_top_eigenvalue_matches_power_iteration(attack, bdb_store, tmp_path):
    from bdb_analysis_weights.hessian import hvp_of, power_iteration

    nums = check_analysis("hessian", attack.run_id, bdb_store, tmp_path, n=64, settings={"iterations": 12})
    ctx = analysis_context(attack.run_id, bdb_store)
    s = ctx.sample("clean-test", n=64)
    hvp, dim = hvp_of(ctx.model, s.x, s.label)
    top = power_iteration(hvp, dim, 20, torch.Generator().manual_seed(3))
    assert nums["parameters"] == dim
    assert nums["top_eigenvalue"] == pytest.approx(top, rel=0.05)


def test_loss_landscape_centre_is_the_loss_and_weights_are_restored(attack, bdb_store, tmp_path):
    import torch.nn.functional as F

    nums = check_analysis("loss-landscape", attack.run_id, bdb_store, tmp_path, n=128, settings={"resolution": 5})
    ctx = analysis_context(attack.run_id, bdb_store)
    s = ctx.sample("clean-test", n=128)
    with torch.no_grad():
        loss = float(F.cross_entropy(ctx.model(s.x), s.y))
    assert nums["clean"]["centre"] == pytest.approx(loss, rel=1e-4)
    assert nums["clean"]["mean_rise"] > 0  # the trained model sits in a basin
    assert np.array(nums["grid"]["backdoor"]).shape == (5, 5)


def test_lipschitz_and_network_on_attack_and_defense_runs(attack, defended_run, bdb_store, tmp_path):
    defense = defended_run("ft", attack.run_id, settings={"epochs": 2, "lr": 0.1})
    nums = check_analysis("lipschitz", defense.run_id, bdb_store, tmp_path)
    assert set(nums["layers"]) == {"net.features.0", "net.features.4", "net.features.8"}
    # a low u flags outlier channels, drawn apart (seed 1's victim had one at u=3, and the plot crashed on it)
    low = check_analysis("lipschitz", defense.run_id, bdb_store, tmp_path, settings={"u": 0.5})
    assert any(layer["outliers"] for layer in low["layers"].values())
    net = check_analysis("network", attack.run_id, bdb_store, tmp_path)
    assert net["types"]["Conv2d"] == 3 and net["parameters"] > 10_000
