"""NAB in miniature (mnist5k, small-cnn, 10% poison, seed 0, 1 thread), quick preset: LGA gamma 0.1 for 4 epochs,
10% detected (400 samples, the reference's share), stand-in labeller trained 100 epochs on the clean reserve,
5 epochs of training on the stamped, relabelled set.

Measured on Blended (0.973 / 1.000 before): C-ACC 0.931, ASR 0.029, RA 0.477, DER 0.965; detection AUROC 1.000,
TPR 0.992. On BadNets the LGA ranking is weak (AUROC 0.630): 0.892 / 0.529 at 10% detected (0.867 / 0.783 at the
old 5%), README.
"""

from bdcore.testing import spec_of


def test_defaults():
    cfg = spec_of("defense", "nab").config_model()()
    assert (cfg.gamma, cfg.isolation_epochs, cfg.isolation_ratio, cfg.patch) == (0.5, 20, 0.1, 3)
    assert not cfg.lga_augment  # the reference's LGA stage sees the plain images


def test_nab_removes_blended_and_keeps_accuracy(backdoored_run, defended_run):
    run = backdoored_run("blended")
    d = defended_run("nab", run.run_id)
    assert d.metrics["info"]["detected"] == 400
    assert d.metrics["detection"]["tpr"] >= 0.9                  # measured 0.992
    assert d.metrics["info"]["labeller_val_acc"] >= 0.7
    assert d.metrics["asr"] <= 0.2                                # measured 0.029 (from 1.000)
    assert d.metrics["cacc"] >= run.metrics["cacc"] - 0.08       # measured 0.973 -> 0.931
