"""CLP: the channel Lipschitz upper bound, the outlier rule, and the defense in miniature."""

import pytest
import torch
from torch import nn

from bdb_defense_clp.config import CLPConfig
from bdb_defense_clp.defense import CLP, channel_lipschitz_upper_bounds, outlier_channels
from bdcore.testing import check_defense_acts


def test_uclc_is_spectral_norm_of_bn_scaled_kernel():
    conv = nn.Conv2d(2, 3, 3, bias=False)
    bn = nn.BatchNorm2d(3).eval()
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0] = 1.0  # rank one: a single 3x3 block of ones -> spectral norm 3
        conv.weight[1] = torch.randn(2, 3, 3)
        conv.weight[2, 1, 0, 0] = -2.0
        bn.weight.copy_(torch.tensor([2.0, 1.0, 0.5]))
        bn.running_var.copy_(torch.tensor([4.0, 1.0, 0.25]))
    u = channel_lipschitz_upper_bounds(conv, bn)
    s = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach()
    assert u[0] == pytest.approx(3.0 * float(s[0]), rel=1e-5)  # 3 * 2 / sqrt(4)
    assert u[1] == pytest.approx(float(torch.linalg.svdvals(conv.weight[1].detach().flatten(1))[0] * s[1]), rel=1e-5)
    assert u[2] == pytest.approx(2.0 * float(s[2]), rel=1e-5)


def test_outliers_are_above_mean_plus_u_std():
    uclc = torch.tensor([1.0] * 9 + [10.0])  # mean 1.9, std 2.85: 10 > 1.9 + 2 * 2.85
    assert outlier_channels(uclc, 2.0).tolist() == [9]
    assert outlier_channels(uclc, 3.0).tolist() == []  # 10 < 1.9 + 3 * 2.85
    assert outlier_channels(torch.tensor([5.0]), 3.0).numel() == 0


def test_clp_prunes_a_planted_outlier_channel_without_data():
    from bdcore import DefenseInputs
    from bdcore.testing import defense_context

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 32, 3), nn.BatchNorm2d(32), nn.ReLU(), nn.Conv2d(32, 16, 3),
                          nn.BatchNorm2d(16), nn.ReLU(), nn.Flatten(), nn.LazyLinear(10)).eval()
    with torch.no_grad():
        model[0].weight[7] *= 50.0  # channel 7 of the first layer: a huge Lipschitz bound
    ctx = defense_context(shape=(1, 8, 8))
    # data-free: no reserve or validation data is given at all
    out = CLP(CLPConfig(), ctx).run(DefenseInputs(model, None, None, None, None, lambda: None))
    bn = out.model[1]
    assert bn.weight[7] == 0 and bn.bias[7] == 0
    assert int((bn.weight == 0).sum()) == 1
    assert out.info["pruned_per_layer"]["1"] == 1 and out.info["pruned_total"] == 1
    assert out.info["layers"] == 2 and out.info["channels_total"] == 48


@pytest.mark.xfail(strict=True, reason=(
    "CLP at the paper's u=3 fails in miniature: small-cnn has 32/64/128 channels and only one "
    "channel per net passes mean + 3 std (the same count as on a clean model); measured ASR 0.996"))
def test_clp_u3_removes_badnet_in_miniature(backdoored_run, defended_run):
    # measured (mnist5k, small-cnn, seed 0): before C-ACC 0.972 ASR 0.998; after 0.956 / 0.996
    run = defended_run("clp", backdoored_run("badnet").run_id)
    assert run.metrics["asr"] <= 0.5


def test_clp_in_miniature_u3_prunes_little_and_lower_u_trades_accuracy(backdoored_run, defended_run):
    # measured (mnist5k, small-cnn, BadNets, before C-ACC 0.972 ASR 0.998), C-ACC / ASR after:
    #   u=3: 1 channel pruned, 0.956 / 0.996   u=2: 6 pruned, 0.801 / 0.546   u=1: 33, 0.317 / 0.021
    # re-measured under the reference protocol (poison drawn from all samples, uint8 poison, whole 5% reserve of 200): before 0.968 / 0.989; u=2: 4 pruned, 0.819 / 0.991.
    # (a clean model loses 1 channel at u=3 too). No u keeps accuracy and removes the backdoor here.
    attack = backdoored_run("badnet")
    u3 = defended_run("clp", attack.run_id)
    assert u3.metrics["info"]["pruned_total"] <= 2
    assert u3.metrics["cacc"] >= u3.metrics["before"]["cacc"] - 0.03
    u2 = defended_run("clp", attack.run_id, settings={"u": 2.0})
    assert u2.metrics["info"]["pruned_total"] > u3.metrics["info"]["pruned_total"]
    # u=2 never both keeps accuracy and removes the backdoor: C-ACC / ASR 0.819 / 0.991 (AVX-512), 0.935 / 0.960
    # (AVX2) at seed 0, 0.532 / 0.203 at seed 1 (tests/THRESHOLDS.md)
    kept = u2.metrics["cacc"] >= u2.metrics["before"]["cacc"] - 0.02
    removed = u2.metrics["asr"] <= 0.2
    assert not (kept and removed)


def test_clp_runs_on_preact_resnet18(backdoored_run, defended_run, bdb_store):
    # digits, 3 epochs of PreAct-ResNet18 with Blended (C-ACC 0.861, ASR 0.725): u=3 prunes 25 of
    # 3,904 channels in 17 conv-BN pairs; C-ACC 0.889, ASR 0.812 (not removed; see README)
    attack = backdoored_run("blended", dataset="digits", model="preact-resnet18", epochs=3)
    run = defended_run("clp", attack.run_id)
    check_defense_acts("clp", bdb_store, run)  # a changed model, or the reason why not
    info = run.metrics["info"]
    assert info["layers"] == 17 and info["channels_total"] == 3904
    assert 1 <= info["pruned_total"] <= 100
    assert run.metrics["cacc"] >= 0.8
