"""TeCo in miniature (mnist5k, small-cnn, 15 epochs, 10% poison, seed 0, 1 thread).

The 15 corruptions at severities 1..5 (CIFAR-10-C parameters), the threshold at 5% false rejections on the
200-image clean reserve; the harness scores the 1,000 clean test images and the 900 triggered ones.
Measured with the reference setting:
  attack    TPR    FPR    AUROC   reserve mean deviation
  BadNets   0.007  0.030  0.166   1.76
  Blended   0.000  0.060  0.010   1.82
  WaNet     0.007  0.030  0.291          (closing table; BadNets there 0.193, Blended 0.012)
TeCo's premise fails on grey digits: CIFAR-C's photometric corruptions (fog, brightness, contrast, frost,
snow) lift the flat black background and erase the strokes within a few severities, while noise, JPEG,
zoom and elastic corruptions leave a digit alone, so *clean* digits already flip at very different
severities (mean deviation 1.76). A triggered digit is the consistent one: the model keys on the trigger so
strongly that it survives most corruptions (BadNets: 96-97% never flip under noise, brightness, snow,
frost; Blended: nearly everything never flips), so its deviation is lower, not higher. The ranking is
inverted (1 - AUROC: 0.834 and 0.990). How a prediction that never flips is counted does not rescue it
(first 200 images of each set: counted 6 -> AUROC 0.45, 5 -> 0.46, 0 -> 0.56).
"""

from bdcore.testing import spec_of


def test_reference_defaults():
    cfg = spec_of("defense", "teco").config_model()()
    assert len(cfg.corruptions) == 15 and cfg.max_severity == 5 and cfg.frr == 0.05


def test_teco_ranks_badnet_triggers_below_clean_digits_in_miniature(backdoored_run, defended_run):
    # Three of the 15 corruptions (the conformance kit's: noise, blur, brightness), 8 s instead of the reference's
    # 41 s (session 8, to keep the suite in its time); the inversion is the same: measured AUROC 0.121, TPR 0.008,
    # FPR 0.059 (reference 15: 0.166, 0.007, 0.030; six corruptions: 0.149, 0.003, 0.037).
    run = backdoored_run("badnet")
    d = defended_run("teco", run.run_id, settings={"corruptions": ["gaussian_noise", "defocus_blur", "brightness"]})
    det = d.metrics["input_detection"]
    assert det["auroc"] <= 0.3   # triggered digits deviate less than clean ones
    assert det["tpr"] <= 0.05    # so the threshold catches almost none of them
    assert det["fpr"] <= 0.1     # the threshold rejects 5% of the reserve
    assert d.metrics["info"]["calibration_rejected"] <= 0.05
