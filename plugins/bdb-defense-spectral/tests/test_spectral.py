"""Spectral Signatures in miniature (mnist5k, small-cnn, 15 epochs, 10% poison, seed 0, 1 thread).

Measured with the default settings (eps 0.1: the top 15% of every class removed), retraining with the
victim's recipe on the 3,394 kept samples:
  attack    TPR    FPR    AUROC   C-ACC before -> after   ASR before -> after   DER
  BadNets   0.255  0.140  0.665   0.972 -> 0.953          0.998 -> 0.783       0.60
  Blended   0.205  0.146  0.819   0.970 -> 0.958          1.000 -> 1.000       0.49
At 10% poison of the whole set the target class is half poisoned; the two halves then sit
symmetrically about the class mean along the top singular vector, so the squared projection cannot
single the poison out (the method's premise is a minority). It ranks better than chance and removes
enough BadNets samples to lower the ASR, not enough to remove the backdoor. The BadNets test (last measured
under the reference protocol: 605 flagged, AUROC 0.608, TPR 0.258, ASR 0.753, C-ACC 0.953; session 8's suite: AUROC
0.611, ASR 0.790) was removed in session 8 to keep the suite inside its time: a 38 s retraining for a ranking barely
above chance; Blended's, the better ranking, stays.
"""

import pytest

from bdcore.testing import spec_of


def test_reference_defaults_match_the_catalog():
    cfg = spec_of("defense", "spectral").config_model()()
    assert (cfg.eps, cfg.removal_factor) == (0.1, 1.5)  # the top 15% (reference: above the 85th percentile)


def test_spectral_ranks_blended_poison_above_chance(backdoored_run, defended_run):
    run = backdoored_run("blended")
    d = defended_run("spectral", run.run_id)
    assert d.metrics["detection"]["auroc"] >= 0.7  # 0.749-0.794 over kernel sets and seeds (0.819 once)


@pytest.mark.xfail(strict=True, reason="with the target class half poisoned the top 15% by score catch only 20% of the "
                                       "Blended poison; the retrained model keeps the backdoor (measured ASR 1.000)")
def test_spectral_removes_blended_backdoor(backdoored_run, defended_run):
    run = backdoored_run("blended")
    assert defended_run("spectral", run.run_id).metrics["asr"] <= 0.5
