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
            caveat="at the paper's u=3 it prunes one channel per net of the mnist5k miniature's small CNN "
                   "(32/64/128 channels, as many as on a clean model) and leaves BadNets in (ASR 0.996); lower u "
                   "removes it at a clean-accuracy cost; see its README",
            config="bdb_defense_clp.config:CLPConfig",
            factory="bdb_defense_clp.defense:CLP",
        )
    ]
