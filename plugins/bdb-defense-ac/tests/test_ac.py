"""Activation Clustering in miniature (mnist5k, small-cnn, 15 epochs, 10% poison, seed 0, 1 thread).

Measured with the default settings (PCA to 10 dims, k-means k=2, relative size < 0.35), retraining with
the victim's recipe on the kept samples:
  attack    TPR    FPR    AUROC   C-ACC before -> after   ASR before -> after   DER
  BadNets   0.558  0.019  0.667   0.972 -> 0.961          0.998 -> 0.420       0.78
  Blended   0.000  0.014  0.962   0.970 -> 0.967          1.000 -> 1.000       0.50
At 10% poison of the whole set the poisoned images outnumber the clean ones in the target class (400 of its
757 samples, closing-table victims), so the paper's premise that the poisoned cluster is the small one fails:
on BadNets k-means cuts 177 poisoned images (99% pure) into a cluster of 24% of the class, the other 223 stay
with the clean zeros; on Blended (and WaNet) k-means separates the poison almost perfectly (398 of 398, 2 clean
in the other cluster) but as the *larger* cluster, so the relative-size rule keeps it and the per-sample
scores, pointing at the smaller (clean) cluster, are inverted (closing table AUROC 0.117 Blended, 0.019 WaNet).
Last measured on BadNets 10% (session 7, victim 0.969 / 0.996): AUROC 0.633, ASR 0.556 after retraining. That
test (a 40 s run of a case outside the method's premise) was removed in session 8 to keep the suite inside its
time; the test below is AC where its premise holds.
"""

from bdcore.testing import spec_of


def test_reference_defaults_match_the_catalog():
    cfg = spec_of("defense", "ac").config_model()()
    assert (cfg.reduce, cfg.dims, cfg.clusters, cfg.size_threshold) == ("pca", 10, 2, 0.35)


def test_ac_removes_wanet_poison_where_it_is_the_minority_of_its_class(backdoored_run, defended_run):
    # At 10% poison the WaNet (and Blended) cluster is the larger half of the target class and the relative-size
    # rule picks the clean half (closing table: AUROC 0.019 WaNet, 0.117 Blended). At 5% (200 poisoned of ~580 in
    # class 0) the paper's premise holds. Measured (seed 0, 1 thread): before C-ACC 0.976 / ASR 0.943; AUROC 0.970,
    # TPR 0.990, FPR 0.014; retrained C-ACC 0.967, ASR 0.003 (Blended at 5%: AUROC 0.958, TPR 0.990, but the two
    # images left keep ASR 0.838; BadNets at 5%: AUROC 0.652, TPR 0.495, README).
    run = backdoored_run("wanet", pratio=0.05)
    d = defended_run("ac", run.run_id)
    det = d.metrics["detection"]
    assert 0 in d.metrics["info"]["flagged_classes"]
    assert det["auroc"] >= 0.9
    assert det["tpr"] >= 0.9
    assert det["fpr"] <= 0.05
    assert d.metrics["asr"] <= 0.1
    assert d.metrics["cacc"] >= run.metrics["cacc"] - 0.02
