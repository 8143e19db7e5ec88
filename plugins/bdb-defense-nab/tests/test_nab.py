"""NAB in miniature (mnist5k, small-cnn, BadNets 10%, seed 0, 1 thread), quick preset: LGA gamma 0.1 for 4 epochs,
5% detected (200 samples), stand-in labeller trained 100 epochs on the clean reserve (120 images; val acc 0.85),
5 epochs of training on the stamped, relabelled set.

Measured: C-ACC 0.968 -> 0.881, ASR 0.989 -> 0.740, RA 0.254, DER 0.581; detection precision 0.305, TPR 0.152
(61 of 400 poisoned among the 200 detected), AUROC 0.572. The 339 undetected poisoned samples keep teaching the
attack's trigger, which the defensive trigger does not override: NAB fails in miniature (asserted as measured).
"""

from bdcore.testing import spec_of


def test_defaults():
    cfg = spec_of("defense", "nab").config_model()()
    assert (cfg.gamma, cfg.isolation_epochs, cfg.isolation_ratio, cfg.patch) == (0.5, 20, 0.05, 3)


def test_nab_detects_keeps_accuracy_but_leaves_badnets_in_miniature(backdoored_run, defended_run):
    # one defense run (a shared fixture would rerun it on each xdist worker); the failure is recorded, not hidden
    run = backdoored_run("badnet")
    d = defended_run("nab", run.run_id)
    assert d.metrics["info"]["detected"] == 200
    assert d.metrics["detection"]["precision"] >= 0.2          # measured 0.305 (poison share is 0.10)
    assert d.metrics["info"]["labeller_val_acc"] >= 0.7         # measured 0.85
    assert d.metrics["cacc"] >= run.metrics["cacc"] - 0.12      # measured 0.968 -> 0.881
    # the paper's claim does not hold here: 339 undetected poisoned samples keep the backdoor
    assert d.metrics["asr"] >= 0.5                              # measured 0.740 (from 0.989)
