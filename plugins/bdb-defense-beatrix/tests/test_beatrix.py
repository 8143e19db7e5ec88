"""Beatrix in miniature (mnist5k, small-cnn, 15 epochs, 10% poison, seed 0, 1 thread).

Feature map: the last ReLU of small-cnn (128 channels, 7x7); orders 1..8; per-class statistics from the
160 reserve images (about 16 per class), the flagging threshold from the 40 validation images.
Measured with the default settings:
  attack    TPR    FPR    AUROC
  BadNets   0.665  0.082  0.919
  Blended   0.000  0.029  0.872
Blended's whole-image blend moves the Gram features less than the BadNets patch: it is ranked well
(AUROC 0.87) but no poisoned sample passes the e^2 anomaly threshold.
"""

import math

import pytest

from bdcore.testing import spec_of


def test_defaults():
    cfg = spec_of("defense", "beatrix").config_model()()
    assert cfg.orders == 8 and math.isclose(cfg.threshold, math.e ** 2)


def test_beatrix_detects_badnet_poison(backdoored_run, defended_run):
    run = backdoored_run("badnet")
    d = defended_run("beatrix", run.run_id)
    det = d.metrics["detection"]
    assert d.metrics["info"]["layer"].endswith("features.10")  # small-cnn's last ReLU (inside the normalising wrapper)
    # reference protocol, statistics from the reserve minus the validation split: 0.920 / 0.798 / 0.083
    # the ranking holds (AUROC 0.899-0.942 over kernel sets and seeds), the e^2 threshold's TPR does not
    # (0.80 at seed 0, 0.16 and 0.03 at seeds 1 and 2)
    assert det["auroc"] >= 0.85
    assert det["fpr"] <= 0.12    # 0.051-0.085


def test_beatrix_ranks_blended_poison(backdoored_run, defended_run):
    run = backdoored_run("blended")
    assert defended_run("beatrix", run.run_id).metrics["detection"]["auroc"] >= 0.74  # 0.789-0.835


@pytest.mark.xfail(strict=True, reason="no Blended sample exceeds the e^2 anomaly threshold (measured TPR 0.000; "
                                       "0.003 under the reference protocol)")
def test_beatrix_flags_blended_poison(backdoored_run, defended_run):
    run = backdoored_run("blended")
    assert defended_run("beatrix", run.run_id).metrics["detection"]["tpr"] >= 0.3
