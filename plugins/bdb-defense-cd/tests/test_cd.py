"""Cognitive Distillation in miniature (mnist5k, small-cnn, 15 epochs, 10% poison, seed 0, 1 thread).

Masks for the 200 clean reserve images and the 4,000 training images; a training image is flagged when its
mask's L1 norm is below the reserve's mean - 1 std. The tests run 10 mask steps instead of the reference's
100 (about 5.5 CPU minutes per run): the rankings barely move with the step count.
Measured:
  attack    steps   TPR    FPR    AUROC
  BadNets   100     0.135  0.181  0.461
  BadNets   30      0.123  0.157  0.464
  BadNets   10      0.135  0.126  0.522
  Blended   100     1.000  0.105  0.993
  Blended   30      1.000  0.147  0.998
  Blended   10      1.000  0.146  0.991
  WaNet     10      0.165  0.158  0.522   (closing table; 0.407 at 100 steps on 200 + 400 images)
Blended's poisoned images keep the model's output with a small part of the blended pattern. BadNets and WaNet
fail because the mask's fill is a random grey colour, foreign to MNIST's black backgrounds: with the rest filled
grey, the trigger alone keeps the target on 41% of poisoned images (mean |logit change| 5.70), trigger plus
strokes on 56%, so the descent from the full mask stops at masks that keep much of the background, poisoned
and clean alike (100 steps: median norm 280 poisoned, 274 clean). The implementation matches the paper and the
authors' code; their feature variant (gamma 0.001, beta 10, lr 0.05) gives AUROC 0.505 on BadNets (30 steps).
The BadNets miss is recorded here, in the README and in the spec's caveat; it was a strict-xfail test that
trained a 32 s CD run for nothing else (removed in session 8 to keep the suite inside its time).
"""

from bdcore.testing import spec_of

QUICK = {"steps": 10}


def test_reference_defaults_match_the_catalog():
    cfg = spec_of("defense", "cd").config_model()()
    assert (cfg.lr, cfg.p, cfg.gamma, cfg.beta, cfg.steps, cfg.k) == (0.1, 1, 0.01, 10.0, 100, 1.0)


def test_cd_separates_blended_poison(backdoored_run, defended_run):
    run = backdoored_run("blended")
    d = defended_run("cd", run.run_id, settings=QUICK)
    det = d.metrics["detection"]
    assert det["auroc"] >= 0.97   # measured 0.991 (0.998 with 30 steps)
    assert det["tpr"] >= 0.95     # measured 1.000
    assert det["fpr"] <= 0.2      # measured 0.146: mean - 1 std flags about a sixth of the clean images
