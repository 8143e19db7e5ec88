"""BNP: the KL measure on hand-computed values, and the defense in miniature (mnist5k, small-cnn)."""

import math

import torch

from bdb_defense_bnp.defense import gaussian_kl, outliers_above
from bdcore.testing import check_defense_acts


def test_gaussian_kl_hand_computed():
    mu1, v1 = torch.tensor([0.0, 1.0, 0.0]), torch.tensor([1.0, 1.0, 1.0])
    mu2, v2 = torch.tensor([0.0, 0.0, 0.0]), torch.tensor([1.0, 1.0, 4.0])
    kl = gaussian_kl(mu1, v1, mu2, v2)
    # KL(N(0,1)||N(0,1)) = 0; KL(N(1,1)||N(0,1)) = 1/2; KL(N(0,1)||N(0,4)) = log 2 + 1/8 - 1/2
    assert torch.allclose(kl, torch.tensor([0.0, 0.5, math.log(2) + 0.125 - 0.5]))


def test_outliers_above_mean_plus_u_std():
    score = torch.tensor([0.0] * 20 + [10.0])
    assert outliers_above(score, 3.0).tolist() == [20]
    assert outliers_above(torch.zeros(5), 3.0).numel() == 0


def test_reference_setting_prunes_backdoor_neurons_but_not_enough_in_miniature(backdoored_run, defended_run):
    # measured (seed 0, 1 thread): before C-ACC 0.972 / ASR 0.998; after u=3: C-ACC 0.970, ASR 0.889, RA 0.111,
    # 4 neurons pruned, all in the last BN layer, 3 of them among those with the largest trigger-induced shift
    # (2 threads: 0.970 / 0.997 -> 0.971 / 0.884, 3 pruned).
    # The small CNN spreads the backdoor over ~15 of its 128 last-layer neurons, so mean + 3 std flags too few:
    # the reference setting genuinely fails to remove the backdoor here (README: "Miniature results").
    run = backdoored_run("badnet")
    d = defended_run("bnp", run.run_id)
    info = d.metrics["info"]
    # re-measured in session 5 (victim 0.969 / 0.996, one thread): 3 pruned, 2 of them in the last BN layer,
    # C-ACC 0.944, ASR 0.971, RA 0.029
    assert 1 <= info["pruned_count"] <= 8
    last = sorted(info["pruned"])[-1]
    assert len(info["pruned"][last]) >= info["pruned_count"] / 2  # mostly the last layer, where the patch lives
    # session 12 (the reserve drawn from never-poisoned images; AVX-512 seeds 0-2, AVX2 seed 0): C-ACC after 0.884-0.964
    # (a drop of 0.004-0.084), ASR 0.956-1.000
    assert d.metrics["cacc"] >= run.metrics["cacc"] - 0.11
    # re-measured under the reference protocol (poison drawn from all samples, uint8 poison, whole 5% reserve): 2 pruned, C-ACC 0.968 -> 0.966, ASR 0.989 -> 0.946
    assert d.metrics["asr"] >= 0.5  # the backdoor survives (0.946-0.984 over kernel sets and seeds)


def test_runs_on_preact_resnet18(backdoored_run, defended_run, bdb_store):
    # PreAct-ResNet18 on digits (3 epochs): every BN layer is inspected and the model keeps working.
    run = backdoored_run("badnet", dataset="digits", model="preact-resnet18", epochs=3)
    d = defended_run("bnp", run.run_id)
    check_defense_acts("bnp", bdb_store, d)  # a changed model, or the reason why not
    assert d.metrics["info"]["neurons"] == 3904  # the 17 BN layers of PreAct-ResNet18
    assert d.metrics["cacc"] >= run.metrics["cacc"] - 0.1


def test_blended_survives_in_miniature(backdoored_run, defended_run, bdb_store):
    # measured (seed 0, 1 thread): blended before C-ACC 0.970 / ASR 1.000; after u=3: C-ACC 0.968, ASR 1.000 (2 neurons
    # pruned); no u in 1..3 brings ASR below 0.97. The blend trigger shifts many neurons a little.
    run = backdoored_run("blended")
    d = defended_run("bnp", run.run_id)
    check_defense_acts("bnp", bdb_store, d, allow_unchanged=False)  # it acted; the backdoor stays
    assert d.metrics["asr"] >= 0.9
    assert d.metrics["cacc"] >= run.metrics["cacc"] - 0.02
