"""SPECTRE in miniature (mnist5k, small-cnn, 15 epochs, seed 0, 1 thread).

Measured with a fixed k of 32 (the default until issue 27; the top 1.5 x eps of every class flagged; scores = QUE):
  attack (poison)   eps   share of target class poisoned   TPR    FPR    AUROC
  BadNets 10%       0.1   50%                              0.300  0.135  0.654
  Blended 10%       0.1   50%                              0.220  0.144  0.538
  BadNets 10%       0.3   50%                              0.773  0.416  0.790
  Blended 10%       0.3   50%                              0.575  0.438  0.607
  BadNets 5%        0.1   33%                              0.425  0.137  0.805
  BadNets 5%        0.3   33%                              1.000  0.422  0.994
The robust estimate needs the poison to be a minority of its class that the assumed eps covers; at 10%
poison of the whole set the target class is half poisoned and the clean "majority" is not one.
With k chosen per class (the reference's rule, now the default) BadNets 10% gives 0.278 / 0.138 / 0.657 and
Blended 10% 0.152 / 0.151 / 0.489 at seed 0; the choice costs about 30 s per run (eight MCD fits per class).
"""

import pytest

from bdcore.testing import spec_of


def test_defaults():
    cfg = spec_of("defense", "spectre").config_model()()
    assert (cfg.eps, cfg.removal_factor, cfg.dims, cfg.max_dims, cfg.alpha) == (0.1, 1.5, None, 64, 4.0)


def test_spectre_flags_badnet_poison_at_twice_the_clean_rate(backdoored_run, defended_run):
    run = backdoored_run("badnet")
    det = defended_run("spectre", run.run_id).metrics["detection"]
    # k chosen per class (issue 27), AVX-512 seeds 0-2 and AVX2 seed 0: TPR 0.278-0.287, FPR 0.137-0.138, but AUROC
    # 0.645 / 0.634 / 0.386 (seed 2: the QUE scores rank the poison below the clean samples) and 0.645 (AVX2): no AUROC
    # claim (fixed k 32: 0.642-0.666 / 0.273-0.285 over kernel sets and seeds)
    assert det["tpr"] >= 0.22
    assert det["fpr"] <= 0.19


def test_spectre_separates_a_minority_poison_when_eps_covers_it(backdoored_run, defended_run):
    run = backdoored_run("badnet", pratio=0.05)  # 200 of the target class's 600 samples poisoned
    # a fixed k of 32 (what this test measures is the robust estimate when eps covers the poison; choosing k per
    # class costs ~30 s more per run and is the test above's business)
    det = defended_run("spectre", run.run_id, settings={"eps": 0.3, "dims": 32}).metrics["detection"]
    # fixed k 32: 0.978-0.995 / 1.000 over kernel sets and seeds
    assert det["auroc"] >= 0.95
    assert det["tpr"] >= 0.95    # FPR 0.422 at k 32: 45% of every class is flagged


@pytest.mark.xfail(strict=True, reason="Blended at 10% poisons half the target class; the robust estimate has no clean "
                                       "majority to fit (measured AUROC 0.538)")
def test_spectre_ranks_blended_poison(backdoored_run, defended_run):
    run = backdoored_run("blended")  # fixed k 32 (0.538); k chosen per class gives 0.489 at seed 0
    assert defended_run("spectre", run.run_id, settings={"dims": 32}).metrics["detection"]["auroc"] >= 0.7
