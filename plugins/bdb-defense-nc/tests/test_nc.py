"""Neural Cleanse in miniature: detection on BadNets and clean models, unlearning, another backbone.

All runs use MINI (below) instead of the paper's 1000-epoch budget: 30 reverse-engineering epochs
in mini-batches of 8 (20 Adam steps per epoch over the 160-image reserve, close to the reference
code's 31 steps per 1000-sample epoch), patience 3 and early-stop patience 6. That keeps one
10-class search at ~25 s of CPU time (the reference budget takes ~130-160 s and gives the same
picture: measured BadNets index 2.07, clean max 0.87).

What the miniature shows (mnist5k, small-cnn, 15 epochs): the reversed trigger of the BadNets
target is tiny (L1 1.7 vs a median of 46), but the clean classes' norms spread so widely on MNIST
(24 for '3' up to 192 for '1') that the MAD anomaly index of class 0 is capped near 2: measured
1.66 / 1.81 with the harness's seed (1 / 2 CPU threads: the victim models differ slightly with
the thread count), 2.05-2.14 with other seeds. The paper's threshold 2 is therefore a coin flip
here; the tests say so (the index lies near 2) and run unlearning with `anomaly_threshold` 1.5,
which separates the BadNets model (1.66 / 1.81) from the clean one (max 0.73 / 1.11) in these runs:
a value tuned in miniature by looking at these two seed-0 test models (held-out seeds: README,
"Held-out check of the tuned setting").
Measured values below are "1 thread / 2 threads".
"""

import pytest
import torch

from bdcore import flag_outliers, median
from bdcore.testing import check_defense_acts

MINI = {"epochs": 30, "batch_size": 8, "patience": 3, "early_stop_patience": 6, "anomaly_threshold": 1.5}


@pytest.fixture(scope="module")
def nc_badnet(backdoored_run, defended_run):
    return defended_run("nc", backdoored_run("badnet").run_id, settings=MINI)


def test_target_class_has_by_far_the_smallest_reversed_trigger(nc_badnet):
    info = nc_badnet.metrics["info"]
    norms = torch.tensor(info["norms"])
    # measured: class 0 norm 1.96 / 1.75, median 47.9 / 46.5; the others 24-192
    assert int(norms.argmin()) == 0
    assert norms[0] < 0.1 * median(norms)
    # measured: index of class 0 1.66 / 1.81, the largest below the median (next: 0.86 / 0.90, class 3)
    below = [i for i in range(10) if norms[i] < median(norms)]
    assert max(below, key=lambda i: info["anomaly_index"][i]) == 0
    assert info["max_anomaly_index"] > 1.5
    assert all(info["trigger_found"])


def test_paper_threshold_2_is_a_coin_flip_in_miniature(nc_badnet):
    # MNIST's clean norms spread too widely for MAD to put the BadNets target clearly above 2.
    # measured: index of class 0 1.66 / 1.81 with the harness seed (threshold 2 flags nothing), 2.13 with
    # it on an AVX-512 CPU (one thread) and 2.05-2.14 with other seeds (it flags class 0 alone)
    info = nc_badnet.metrics["info"]
    index = info["anomaly_index"][0]
    assert 1.5 < index < 3.0  # 2.13 (AVX-512) at seed 0, 2.64 at seed 1
    assert flag_outliers(torch.tensor(info["norms"]), 2.0).nonzero().flatten().tolist() == ([0] if index > 2 else [])


def test_unlearning_the_flagged_trigger_cuts_badnets_asr(nc_badnet):
    m = nc_badnet.metrics
    assert m["info"]["flagged"] == [0]
    # measured: ASR 0.998 -> 0.068 / 0.997 -> 0.053, C-ACC 0.972 -> 0.944 / 0.970 -> 0.948,
    # RA 0.909 / 0.920, DER 0.951 / 0.961
    # (fine-tuning alone with the same schedule leaves ASR at 0.984)
    assert m["before"]["asr"] > 0.95
    assert m["asr"] < 0.42  # 0.207 at seed 1 (AVX-512), 0.349 at seed 2 (AVX2)
    assert m["cacc"] >= m["before"]["cacc"] - 0.04
    assert m["ra"] > 0.8


def test_clean_model_is_not_flagged_and_left_unchanged(clean_run, defended_run):
    run = defended_run("nc", clean_run.run_id, settings=MINI)
    info = run.metrics["info"]
    # measured: norms 26.9-161.7 / 26.5-170.1; max index below the median 0.73 / 1.11
    assert info["flagged"] == []
    assert info["max_anomaly_index"] < 1.5
    assert run.metrics["cacc"] == run.metrics["before"]["cacc"]


def test_runs_on_preact_resnet18(backdoored_run, defended_run, bdb_store):
    # PreAct-ResNet18 on digits (8x8), 3 victim epochs: 3 reverse-engineering epochs only (cost).
    # measured: C-ACC unchanged (0.903 / 0.869), all 10 norms in 34-43 (this short victim run barely
    # learns the one-pixel BadNets trigger: ASR 0.025 / 0.046), nothing flagged (max index 0.99 / 1.12)
    arun = backdoored_run("badnet", dataset="digits", model="preact-resnet18", epochs=3)
    run = defended_run("nc", arun.run_id, settings={"epochs": 3, "batch_size": 8, "anomaly_threshold": 1.5})
    check_defense_acts("nc", bdb_store, run)  # a changed model, or the reason why not
    info = run.metrics["info"]
    assert len(info["norms"]) == 10 and all(n > 0 for n in info["norms"])
    assert run.metrics["cacc"] >= run.metrics["before"]["cacc"] - 0.05
