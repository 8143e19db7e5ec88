"""AGPD in miniature (mnist5k, small-cnn, 15 epochs, 10% poison, seed 0, 1 thread).

Clean directions from 100 correctly classified reserve samples (10 per class); the three convolutions of
small-cnn are the candidate layers.
Measured with the default settings (tau 0.1, window 10):
  attack    layer chosen   target classes (index)        TPR    FPR    precision   AUROC
  BadNets   features.0     0 (17.3)                      0.628  0.007  0.909       0.990
  WaNet     features.4     0 (56.0), 1 (9.0)             0.000  0.033  0.000       0.945
  Blended   features.8     none (max 1.96 < e^2)         0.000  0.000  -           0.698
Against BadNets the target class stands out and the filtering rounds take the poison first. Against WaNet the
target class stands out even more (index 56), but its least-clean-like gradient, which seeds the poison
direction, is a clean zero: the rounds gather clean samples first and the flags miss (the ranking across
classes still gives AUROC 0.945). Against Blended no class passes e^2.
"""

import math


from bdcore.testing import spec_of


def test_defaults():
    cfg = spec_of("defense", "agpd").config_model()()
    assert cfg.n_clean == 100 and math.isclose(cfg.threshold, math.e ** 2) and cfg.window == 10


def test_agpd_finds_the_badnet_target_and_its_poison(backdoored_run, defended_run):
    run = backdoored_run("badnet")
    d = defended_run("agpd", run.run_id)
    det, info = d.metrics["detection"], d.metrics["info"]
    assert info["target_classes"] == [0]
    assert info["anomaly_index"]["0"] > 10   # measured 17.3
    assert det["auroc"] >= 0.97              # measured 0.990
    assert det["tpr"] >= 0.25                # 0.598-0.628 at seed 0, 0.340 at seed 1
    assert det["fpr"] <= 0.02                # measured 0.007


def test_agpd_ranks_wanet_poison(backdoored_run, defended_run):
    run = backdoored_run("wanet")
    d = defended_run("agpd", run.run_id)
    # the target class is flagged at seed 0 (index 56.0; class 1 too on AVX-512) but not at seed 1 (no class
    # flagged), while the ranking holds: AUROC 0.944-1.000 over kernel sets and seeds
    assert d.metrics["detection"]["auroc"] >= 0.9


# agpd does not flag WaNet's poison reliably: TPR 0.000 at seeds 0 and 1 (both kernel sets), 1.000 at seed 2 (AVX2);
# it was a strict xfail, which seed 2 passed (tests/THRESHOLDS.md; the spec's caveat).
