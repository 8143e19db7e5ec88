"""bdb plugin: BN-statistics pruning, BNP (entry point; light, no torch)."""

from bdcore import hookimpl
from bdcore import DefenseSpec


@hookimpl
def bdb_register_defenses() -> list[DefenseSpec]:
    return [
        DefenseSpec(
            name="bnp",
            summary="prune BN neurons whose clean pre-activation statistics diverge (KL) from the BN running "
                    "statistics learnt on the poisoned training set",
            paper="Zheng, Tang, Li & Liu, Pre-activation Distributions Expose Backdoor Neurons, NeurIPS 2022 (BNP)",
            stage="post",
            config="bdb_defense_bnp.config:BNPConfig",
            factory="bdb_defense_bnp.defense:BNP",
        )
    ]
