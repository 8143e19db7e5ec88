"""SentiNet in miniature (mnist5k, small-cnn, 15 epochs, 10% poison, seed 0, 1 thread).

Grad-CAM at small-cnn's last feature map; the salient region (CAM >= 0.85) pasted on 100 clean reserve
images; the boundary fitted on the 200 reserve images, the threshold at 5% of them; the harness scores the
1,000 clean test images and the 900 triggered non-target ones.
Measured with the default settings:
  attack    TPR    FPR (clean test)   AUROC    reserve: mean fooled rate / confidence
  BadNets   0.991  0.068              0.9945   0.041 / 0.811
The corner patch is what Grad-CAM marks on a triggered digit, and pasted on clean digits it makes them the
target; a clean digit's salient strokes rarely turn other digits into its class.
"""

from bdcore.testing import spec_of


def test_reference_defaults():
    cfg = spec_of("defense", "sentinet").config_model()()
    assert (cfg.n_clean, cfg.mask_threshold, cfg.frr) == (100, 0.85, 0.05)


def test_sentinet_catches_nearly_every_badnet_input(backdoored_run, defended_run):
    # 25 carriers instead of the reference's 100 keep the test 4x shorter; measured in session 5 (one thread,
    # victim 0.969 / 0.996): TPR 0.997, FPR 0.039, AUROC 0.9988 (100 carriers, earlier victim: 0.991 / 0.068 / 0.9945)
    run = backdoored_run("badnet")
    d = defended_run("sentinet", run.run_id, settings={"n_clean": 25})
    det = d.metrics["input_detection"]
    assert det["tpr"] >= 0.95
    assert det["fpr"] <= 0.1
    assert det["auroc"] >= 0.98
    assert d.metrics["info"]["calibration_rejected"] <= 0.05
    assert d.metrics["asr"] == run.metrics["asr"]  # detection only: the model is unchanged
