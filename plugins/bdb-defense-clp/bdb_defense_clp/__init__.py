"""bdb plugin: Channel Lipschitzness-based Pruning, a data-free defense (entry point; light, no torch)."""

from bdcore import hookimpl
from bdcore import DefenseSpec


@hookimpl
def bdb_register_defenses() -> list[DefenseSpec]:
    return [
        DefenseSpec(
            name="clp",
            summary="data-free: prune channels whose channel Lipschitz upper bound is an outlier in their layer",
            paper="Zheng, Tang, Li & Liu, Data-free Backdoor Removal based on Channel Lipschitzness, ECCV 2022",
            stage="post",
            config="bdb_defense_clp.config:CLPConfig",
            factory="bdb_defense_clp.defense:CLP",
        )
    ]
