"""DBD in miniature (mnist5k, small-cnn, BadNets 10%, target 0, seed 0, 1 thread).

The quick preset (session 10: SimCLR 10 epochs at batch 128 and lr 0.1, SCE warm-up 10 epochs at Adam 0.02,
MixMatch 5 epochs with lambda_u ramped up over them, the labelled half chosen within each label after
re-estimating BatchNorm statistics on the plain training images) measured BadNets C-ACC 0.969 -> 0.953,
ASR 0.996 -> 0.006 (README). The test runs a cheaper setting of it: SimCLR 3 epochs, warm-up 5, MixMatch 3
with a 3-epoch ramp-up. Measured (CLI, one thread, 50 s): C-ACC 0.969 -> 0.908, ASR 0.996 -> 0.023, RA 0.888,
DER 0.956; distrusted precision 0.175 (400 poisoned among 2,002 distrusted), TPR 0.875, loss AUROC 0.911.
Before session 10 (warm-up at the paper's Adam 0.002 for 5 epochs, whole-set selection, BN statistics of the
mixed-up images) the poisoned samples had *lower* loss than the clean ones and DBD failed (C-ACC 0.40-0.47).
"""

from bdcore.testing import spec_of

CHEAP = {"simclr_epochs": 3, "warmup_epochs": 5, "semi_epochs": 3, "rampup_epochs": 3}


def test_reference_defaults_match_the_paper():
    cfg = spec_of("defense", "dbd").config_model()()
    assert (cfg.simclr_epochs, cfg.simclr_lr, cfg.simclr_batch_size, cfg.temperature) == (100, 0.4, 512, 0.5)
    assert (cfg.warmup_epochs, cfg.warmup_lr, cfg.sce_alpha, cfg.sce_beta, cfg.lr) == (10, 0.002, 0.1, 1.0, 0.002)
    assert (cfg.epsilon, cfg.semi_epochs, cfg.lambda_u, cfg.sharpen_temperature, cfg.mixup_alpha) == (
        0.5, 190, 15.0, 0.5, 0.75)
    assert cfg.rampup_epochs == 190 and not cfg.per_class and not cfg.recalibrate_bn


def test_quick_preset_adaptations():
    quick = spec_of("defense", "dbd").presets["quick"]
    # the miniature adaptations (README, Deviations); everything else stays the paper's
    assert quick["simclr_lr"] == 0.1 and quick["simclr_batch_size"] == 128   # 0.4 at 512, scaled linearly
    assert quick["warmup_lr"] == 0.02 and quick["rampup_epochs"] == quick["semi_epochs"]
    assert quick["per_class"] is True and quick["recalibrate_bn"] is True


def test_dbd_removes_badnets_and_keeps_accuracy(backdoored_run, defended_run):
    run = backdoored_run("badnet")
    d = defended_run("dbd", run.run_id, settings=CHEAP)
    det = d.metrics["detection"]
    assert det["auroc"] >= 0.8                                    # measured 0.911
    assert det["tpr"] >= 0.75                                     # measured 0.875
    assert d.metrics["asr"] <= 0.1                                # measured 0.023 (from 0.996)
    assert d.metrics["cacc"] >= run.metrics["cacc"] - 0.1         # measured 0.969 -> 0.908


def test_dbd_removes_wanet_and_keeps_accuracy(backdoored_run, defended_run):
    """The same cheap setting on WaNet (session 10, CLI, one thread, 48 s): C-ACC 0.973 -> 0.899, ASR 0.974 -> 0.026,
    RA 0.861, DER 0.937; TPR 0.878, loss AUROC 0.917. (Blended is not removed: README.)"""
    run = backdoored_run("wanet")
    d = defended_run("dbd", run.run_id, settings=CHEAP)
    assert d.metrics["detection"]["auroc"] >= 0.8                 # measured 0.917
    assert d.metrics["asr"] <= 0.1                                # measured 0.026
    assert d.metrics["cacc"] >= run.metrics["cacc"] - 0.11        # measured 0.973 -> 0.899
