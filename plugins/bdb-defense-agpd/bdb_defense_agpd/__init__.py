"""bdb plugin: AGPD poisoned-data detection (entry point; light, no torch)."""

from bdcore import DefenseSpec, hookimpl


@hookimpl
def bdb_register_defenses() -> list[DefenseSpec]:
    return [
        DefenseSpec(
            name="agpd",
            summary="gradients of each sample's label logit w.r.t. a layer's activations (the gradient circular "
                    "distribution): a target class's gradients disperse between the clean class direction (from 100 "
                    "clean samples) and a poison direction; flag the dispersed class and its samples that gather "
                    "around the poison direction",
            paper="Yuan, Wei, Zhang, Liu & Wu, Activation Gradient based Poisoned Sample Detection Against Backdoor "
                  "Attacks, arXiv 2312.06230, 2023 (AGPD)",
            stage="detect-data",
            caveat="flags WaNet's poison in the mnist5k miniature on some seeds only (TPR 0.000 at seeds 0 and 1, "
                   "1.000 at seed 2) though it ranks it on all (AUROC 0.94-1.00): the target class's poison "
                   "direction is seeded by a clean sample; BadNets is flagged; see its README",
            config="bdb_defense_agpd.config:AGPDConfig",
            factory="bdb_defense_agpd.defense:AGPD",
        )
    ]
