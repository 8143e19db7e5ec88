"""STRIP in miniature (mnist5k, small-cnn, 15 epochs, 10% poison, seed 0, 1 thread).

The threshold is set on the 200 clean reserve images (5% rejected; the validation split lies inside the
reserve, so it is not added again); the harness scores the detector on the 1,000 clean test images and the
900 triggered non-target test images (Blended was measured once and is not rerun here, to keep the tests
short).
Measured:
  attack    settings                    TPR    FPR (clean test)   AUROC
  BadNets   reference (blend, n 64)     0.572  0.055              0.921
  BadNets   superimpose=add, n 16       0.997  0.032              0.9994
  Blended   reference (blend, n 64)     1.000  0.065              0.997
An alpha-0.5 blend halves the BadNets patch's intensity, so about 40% of the triggered digits no longer
keep the target under superimposition; the paper code's saturating pixel sum keeps the white patch whole.
"""

from bdcore.testing import spec_of


def test_reference_defaults_match_the_catalog():
    cfg = spec_of("defense", "strip").config_model()()
    assert (cfg.n, cfg.alpha, cfg.frr, cfg.superimpose) == (64, 0.5, 0.05, "blend")


def test_strip_reference_setting_misses_the_reference_badnet_trigger_in_miniature(backdoored_run, defended_run):
    # Measured with the earlier area-blended BadNets patch: TPR 0.572, FPR 0.055, AUROC 0.921. With the
    # reference's trigger (Pillow-resized and overwritten: 95/156/255 at 28x28) and poison from all samples,
    # the alpha-0.5 blend dilutes the dimmer patch below what the model keys on: TPR 0.041 at FPR 0.020,
    # AUROC 0.738 (the ranking is still better than chance). Calibrated on the reserve alone (200 images; before, the
    # 40 validation images counted twice): TPR 0.057 at FPR 0.030, AUROC 0.738. A genuine miniature failure of the
    # reference setting; the additive superimposition of the authors' code (next test) still catches it.
    # The suite runs the reference blend with n 16 (4x cheaper than n 64; session 5, one thread): TPR 0.067 at
    # FPR 0.050, AUROC 0.708 (victim 0.969 / 0.996).
    run = backdoored_run("badnet")
    d = defended_run("strip", run.run_id, settings={"n": 16})
    det = d.metrics["input_detection"]
    assert det["tpr"] <= 0.32  # 0.081-0.248 over kernel sets and seeds
    assert det["fpr"] <= 0.1
    # its ranking is not asserted: AUROC 0.711 / 0.752 at seed 0 (AVX-512 / AVX2), 0.909 at seed 1, 0.523 at seed 2
    assert d.metrics["info"]["calibration_rejected"] <= 0.05


def test_strip_additive_superimposition_catches_nearly_every_badnet_input(backdoored_run, defended_run):
    # n 16 keeps the test short; the paper code's saturating pixel sum keeps the white patch whole.
    # Measured on the reserve alone under the reference protocol: TPR 0.982, FPR 0.041, AUROC 0.9959
    # (earlier, area-blended patch and reserve + val: 0.997 / 0.032 / 0.9994)
    run = backdoored_run("badnet")
    det = defended_run("strip", run.run_id, settings={"superimpose": "add", "n": 16}).metrics["input_detection"]
    assert det["tpr"] >= 0.95     # measured 0.982
    assert det["fpr"] <= 0.08     # measured 0.041
    assert det["auroc"] >= 0.99   # measured 0.9959


def test_strip_data_mode_flags_badnet_training_samples(backdoored_run, defended_run):
    # Data mode scores the 4,000 poisoned training samples (400 BadNets) at the reserve's 5% threshold.
    # Measured (add, n 8, 1 thread): AUROC 0.996, TPR 0.998 (399/400), FPR 0.072 (259/3,600), precision 0.61.
    run = backdoored_run("badnet")
    d = defended_run("strip", run.run_id, settings={"mode": "data", "superimpose": "add", "n": 8})
    det = d.metrics["detection"]
    assert "input_detection" not in d.metrics
    assert det["auroc"] >= 0.98
    assert det["tpr"] >= 0.95
    assert det["fpr"] <= 0.10
