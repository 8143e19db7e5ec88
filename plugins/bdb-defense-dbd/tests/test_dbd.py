"""DBD in miniature (mnist5k, small-cnn, BadNets 10%, seed 0, 1 thread). The quick preset (SimCLR 10 epochs, warm-up
5, MixMatch 5) fails (README: C-ACC 0.472, ASR 0.607), so the test runs a cheaper setting that fails the same way:
SimCLR 4 epochs (batch 128, lr 0.4, temperature 0.5), SCE warm-up of the head 2 epochs, MixMatch 2 epochs with the
low-loss half labelled.

Measured: C-ACC 0.968 -> 0.403, ASR 0.989 -> 0.597, RA 0.292, DER 0.414; the poisoned samples have *lower* SCE loss
than the clean ones (loss AUROC 0.315), so most of them stay labelled: of the 2,000 distrusted samples 77 are
poisoned (precision 0.038, TPR 0.193). Short SimCLR runs on 4,000 digits do not give the features the method relies
on (the white corner trigger is a dominant self-supervised feature on black MNIST backgrounds); DBD fails in
miniature. The miniature run (a test pinning these numbers, and a strict xfail asserting removal) was removed in
session 8 to keep the suite inside its time (41 s for a known failure; README). The conformance kit still runs all
three stages on every change (tests/test_conformance.py), and test_dbd_math.py pins their pieces.
"""

from bdcore.testing import spec_of


def test_reference_defaults_match_the_paper():
    cfg = spec_of("defense", "dbd").config_model()()
    assert (cfg.simclr_epochs, cfg.simclr_lr, cfg.simclr_batch_size, cfg.temperature) == (100, 0.4, 512, 0.5)
    assert (cfg.warmup_epochs, cfg.sce_alpha, cfg.sce_beta, cfg.lr) == (10, 0.1, 1.0, 0.002)
    assert (cfg.epsilon, cfg.semi_epochs, cfg.lambda_u, cfg.sharpen_temperature, cfg.mixup_alpha) == (
        0.5, 190, 15.0, 0.5, 0.75)
