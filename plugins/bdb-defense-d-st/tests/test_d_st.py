"""D-ST in miniature (mnist5k, small-cnn, BadNets 10%, seed 0, 1 thread), quick preset: the paper's SD module
(probe: 2 cross-entropy epochs + 10 class-centre epochs, FCT, clean 20%, poison 5%), 8 epochs of
semi-supervised contrastive learning (batch 128, lr 0.1, cosine), 10 epochs of the linear classifier (batch 64,
lr 0.5) on the 800 trusted + 200 suspected samples.

Measured: C-ACC 0.968 -> 0.757, ASR 0.989 -> 0.009, RA 0.700, DER 0.885; separation precision 0.665, TPR 0.333,
AUROC 0.961. The backdoor is gone; clean accuracy pays for an extractor trained 8 epochs instead of 200.
"""

from bdcore.testing import spec_of


def test_reference_defaults_match_the_paper():
    cfg = spec_of("defense", "d-st").config_model()()
    assert (cfg.clean_ratio, cfg.poison_ratio, cfg.warm_epochs, cfg.intra_epochs) == (0.2, 0.05, 2, 10)
    assert (cfg.extractor_epochs, cfg.extractor_lr, cfg.extractor_batch_size, cfg.temperature) == (200, 0.5, 512, 0.1)
    assert (cfg.classifier_epochs, cfg.classifier_lr, cfg.unlearn_weight) == (10, 5.0, 0.001)


def test_d_st_trains_a_model_without_the_badnets_backdoor(backdoored_run, defended_run):
    run = backdoored_run("badnet")
    d = defended_run("d-st", run.run_id)
    det = d.metrics["detection"]
    # second figures: re-measured in session 5 (victim 0.969 / 0.996, one thread)
    assert det["auroc"] >= 0.9                                # measured 0.961, 0.982
    assert det["precision"] >= 0.5                            # measured 0.665, 0.880 (poison share is 0.10)
    assert d.metrics["asr"] <= 0.1                            # measured 0.009, 0.013
    assert d.metrics["ra"] >= 0.55                            # measured 0.700, 0.630
    assert d.metrics["cacc"] >= 0.65                          # measured 0.757, 0.697 (victim 0.968, 0.969)
    assert d.metrics["info"]["val_acc"] >= 0.55               # measured 0.80, 0.625
