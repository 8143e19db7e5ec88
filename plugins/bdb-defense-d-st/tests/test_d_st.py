"""D-ST in miniature (mnist5k, small-cnn, BadNets 10%, seed 0, 1 thread), quick preset: the paper's SD module
(probe: 2 cross-entropy epochs + 10 class-centre epochs, FCT, clean 20%, poison 5%), 8 epochs of
semi-supervised contrastive learning (batch 128, lr 0.1, cosine), 10 epochs of the linear classifier (batch 64,
lr 0.1, plain images, standardised features) on the 800 trusted + 200 suspected samples.

Measured (session 10): C-ACC 0.969 -> 0.944, ASR 0.996 -> 0.008, RA 0.939, DER 0.981, validation accuracy 0.950;
separation precision 0.880, TPR 0.440, AUROC 0.982. Before session 10 (classifier on SimCLR views of raw features,
lr 0.5) C-ACC fell to 0.697 (validation 0.625).
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
    # measured in session 10 (victim 0.969 / 0.996, one thread)
    assert det["auroc"] >= 0.9                                # measured 0.982
    assert det["precision"] >= 0.5                            # measured 0.880 (poison share is 0.10)
    assert d.metrics["asr"] <= 0.1                            # measured 0.006
    assert d.metrics["ra"] >= 0.85                            # measured 0.938, 0.939 (head in the core)
    assert d.metrics["cacc"] >= 0.90                          # measured 0.945, 0.944 (victim 0.969; 0.697 before)
    assert d.metrics["info"]["val_acc"] >= 0.85               # measured 0.975, 0.950


def test_d_st_trains_a_model_without_the_blended_backdoor(backdoored_run, defended_run):
    """Quick preset on Blended (session 10, CLI, one thread): C-ACC 0.973 -> 0.920, ASR 1.000 -> 0.000, RA 0.368,
    DER 0.974; separation precision 0.820, TPR 0.410, AUROC 0.954. (WaNet defeats the FCT separation: README.)"""
    run = backdoored_run("blended")
    d = defended_run("d-st", run.run_id)
    assert d.metrics["detection"]["auroc"] >= 0.8                 # 0.845-0.997 over kernel sets and seeds
    assert d.metrics["asr"] <= 0.25                               # 0.000 at seed 0, 0.147 at seed 1
    assert d.metrics["cacc"] >= run.metrics["cacc"] - 0.11        # drops 0.058-0.082 (THRESHOLDS.md)
