"""bdb plugin: Activation Clustering, AC (entry point; light, no torch)."""

from bdcore import DefenseSpec, hookimpl


@hookimpl
def bdb_register_defenses() -> list[DefenseSpec]:
    return [
        DefenseSpec(
            name="ac",
            summary="cluster each class's penultimate activations (10-dim PCA/ICA, k-means k=2) and remove the "
                    "smaller cluster of every class (or, by relative size, only small ones); the harness retrains "
                    "on the rest",
            paper="Chen, Carvalho, Baracaldo, Ludwig, Edwards, Lee, Molloy & Srivastava, Detecting Backdoor Attacks "
                  "on Deep Neural Networks by Activation Clustering, SafeAI@AAAI 2019",
            stage="pre",
            config="bdb_defense_ac.config:ACConfig",
            factory="bdb_defense_ac.defense:ActivationClustering",
            caveat="at 10% poison the poisoned images outnumber the clean target-class images (400 of 757), so the "
                   "'smaller cluster is poisoned' premise picks the clean half on Blended and WaNet (AUROC 0.12 / "
                   "0.02, ASR unchanged) and half the BadNets poison (AUROC 0.63); at 5% poison it finds Blended and "
                   "WaNet (AUROC 0.96-0.98). The default 'smaller' rule (the reference's) also removes the smaller "
                   "cluster of every clean class (FPR 0.34-0.37, 5-7 points of C-ACC after retraining): "
                   "see its README",
        )
    ]
