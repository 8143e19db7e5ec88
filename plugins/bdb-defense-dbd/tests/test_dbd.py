"""DBD in miniature (mnist5k, small-cnn, BadNets 10%, seed 0, 1 thread), quick preset: SimCLR 10 epochs (batch 128,
lr 0.4, temperature 0.5), SCE warm-up of the head 5 epochs, MixMatch 5 epochs with the low-loss half labelled.

Measured: C-ACC 0.968 -> 0.472, ASR 0.989 -> 0.607, RA 0.362, DER 0.443; the head on the SimCLR backbone reaches
validation accuracy 0.45 after the warm-up, and the poisoned samples have *lower* SCE loss than the clean ones
(loss AUROC 0.325), so most of them stay labelled: of the 2,000 distrusted samples 124 are poisoned (precision
0.062, TPR 0.31). Ten SimCLR epochs on 4,000 digits do not give the features the method relies on (the white
corner trigger is a dominant self-supervised feature on black MNIST backgrounds); DBD fails in miniature.
"""

import pytest

from bdcore.testing import spec_of


def test_reference_defaults_match_the_paper():
    cfg = spec_of("defense", "dbd").config_model()()
    assert (cfg.simclr_epochs, cfg.simclr_lr, cfg.simclr_batch_size, cfg.temperature) == (100, 0.4, 512, 0.5)
    assert (cfg.warmup_epochs, cfg.sce_alpha, cfg.sce_beta, cfg.lr) == (10, 0.1, 1.0, 0.002)
    assert (cfg.epsilon, cfg.semi_epochs, cfg.lambda_u, cfg.sharpen_temperature, cfg.mixup_alpha) == (
        0.5, 190, 15.0, 0.5, 0.75)


def test_dbd_runs_its_three_stages_in_miniature(backdoored_run, defended_run):
    run = backdoored_run("badnet")
    d = defended_run("dbd", run.run_id)
    assert d.metrics["info"]["flag_count"] == 2000           # 1 - epsilon of the 4,000 samples unlabelled
    assert d.metrics["detection"]["tpr"] >= 0.2              # measured 0.31
    assert d.metrics["cacc"] >= 0.4                          # measured 0.472


@pytest.mark.xfail(strict=True, reason="DBD does not remove BadNets in miniature (measured, see README)")
def test_dbd_removes_badnets_in_miniature(backdoored_run, defended_run):
    run = backdoored_run("badnet")
    d = defended_run("dbd", run.run_id)
    assert d.metrics["asr"] <= 0.2                           # measured 0.607 (from 0.989)
    assert d.metrics["cacc"] >= run.metrics["cacc"] - 0.1    # measured 0.968 -> 0.472
