"""ASSET in miniature (mnist5k, small-cnn, 15 epochs, 10% poison, seed 0, 1 thread).

One pass over the 4,000 training samples (batches of 128, each paired with a batch of the 200-image clean
reserve as the base set); a fresh small-cnn is offset with Adam lr 1e-4; the 2-component Gaussian mixture on
the final cross-entropies flags the high-loss component.
Measured with the default settings:
  attack    TPR    FPR    precision   AUROC
  BadNets   1.000  0.098  0.532       0.960
  Blended   1.000  0.099  0.528       0.933
The high-loss component is the whole target class: the offset lowers the target logit for everything that
looks like the aimed samples: 752-757 flags for the 400 poisoned samples and the 357 clean zeros (halving
the precision); within the class the poisoned samples rank higher (WaNet, measured once: AUROC 0.927).
"""

from bdcore.testing import spec_of


def test_reference_defaults():
    cfg = spec_of("defense", "asset").config_model()()
    assert (cfg.rounds, cfg.lr, cfg.disc_steps, cfg.disc_hidden, cfg.outlier) == (1, 1e-4, 100, 128, 2.0)


def test_asset_separates_badnet_poison(backdoored_run, defended_run):
    run = backdoored_run("badnet")
    d = defended_run("asset", run.run_id)
    det = d.metrics["detection"]
    assert det["auroc"] >= 0.82  # 0.960 at seed 0, 0.863 at seed 1
    assert det["tpr"] >= 0.5     # 1.000 at seed 0, 0.547 at seed 1
    assert det["fpr"] <= 0.25    # 0.098-0.196
    assert d.metrics["asr"] == run.metrics["asr"]  # detection only: the model is unchanged


def test_asset_separates_blended_poison(backdoored_run, defended_run):
    run = backdoored_run("blended")
    det = defended_run("asset", run.run_id).metrics["detection"]
    assert det["auroc"] >= 0.9   # measured 0.933
    assert det["tpr"] >= 0.9     # measured 1.000
    assert det["fpr"] <= 0.15    # measured 0.099
