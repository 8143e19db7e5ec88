"""DBD in miniature (mnist5k, small-cnn, BadNets 10%, seed 0, 1 thread). The quick preset (SimCLR 10 epochs, warm-up
5, MixMatch 5) fails (README: C-ACC 0.472, ASR 0.607), so the test runs a cheaper setting that fails the same way:
SimCLR 4 epochs (batch 128, lr 0.4, temperature 0.5), SCE warm-up of the head 2 epochs, MixMatch 2 epochs with the
low-loss half labelled.

Measured: C-ACC 0.968 -> 0.403, ASR 0.989 -> 0.597, RA 0.292, DER 0.414; the poisoned samples have *lower* SCE loss
than the clean ones (loss AUROC 0.315), so most of them stay labelled: of the 2,000 distrusted samples 77 are
poisoned (precision 0.038, TPR 0.193). Short SimCLR runs on 4,000 digits do not give the features the method relies
on (the white corner trigger is a dominant self-supervised feature on black MNIST backgrounds); DBD fails in
miniature.
"""

import pytest

from bdcore.testing import spec_of

MINI = {"simclr_epochs": 4, "warmup_epochs": 2, "semi_epochs": 2}


def test_reference_defaults_match_the_paper():
    cfg = spec_of("defense", "dbd").config_model()()
    assert (cfg.simclr_epochs, cfg.simclr_lr, cfg.simclr_batch_size, cfg.temperature) == (100, 0.4, 512, 0.5)
    assert (cfg.warmup_epochs, cfg.sce_alpha, cfg.sce_beta, cfg.lr) == (10, 0.1, 1.0, 0.002)
    assert (cfg.epsilon, cfg.semi_epochs, cfg.lambda_u, cfg.sharpen_temperature, cfg.mixup_alpha) == (
        0.5, 190, 15.0, 0.5, 0.75)


def test_dbd_runs_its_three_stages_in_miniature(backdoored_run, defended_run):
    run = backdoored_run("badnet")
    d = defended_run("dbd", run.run_id, settings=MINI)
    assert d.metrics["info"]["flag_count"] == 2000           # 1 - epsilon of the 4,000 samples unlabelled
    assert d.metrics["detection"]["tpr"] >= 0.1              # measured 0.193
    assert d.metrics["cacc"] >= 0.3                          # measured 0.403
    assert d.metrics["asr"] <= 0.8                           # measured 0.597: MixMatch weakens it, no more


@pytest.mark.xfail(strict=True, reason="DBD does not remove BadNets in miniature (measured, see README)")
def test_dbd_removes_badnets_in_miniature(backdoored_run, defended_run):
    run = backdoored_run("badnet")
    d = defended_run("dbd", run.run_id, settings=MINI)
    assert d.metrics["asr"] <= 0.2                           # measured 0.597 (quick preset: 0.607)
    assert d.metrics["cacc"] >= run.metrics["cacc"] - 0.1    # measured 0.968 -> 0.403 (quick preset: 0.472)
