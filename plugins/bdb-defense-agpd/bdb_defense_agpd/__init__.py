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
            caveat="flags no WaNet sample in the mnist5k miniature (TPR 0.000, FPR 0.033) though it ranks them "
                   "(AUROC 0.945): the target class's poison direction is seeded by a clean sample, so its filtering "
                   "rounds flag clean zeros; BadNets is flagged; see its README",
            config="bdb_defense_agpd.config:AGPDConfig",
            factory="bdb_defense_agpd.defense:AGPD",
        )
    ]
