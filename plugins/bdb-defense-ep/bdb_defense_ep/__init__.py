"""bdb plugin: entropy-based pruning, EP (entry point; light, no torch)."""

from bdcore import hookimpl
from bdcore import DefenseSpec


@hookimpl
def bdb_register_defenses() -> list[DefenseSpec]:
    return [
        DefenseSpec(
            name="ep",
            summary="prune BN neurons whose pre-activation distribution over the (unlabelled) training set has "
                    "abnormally low differential entropy",
            paper="Zheng, Tang, Li & Liu, Pre-activation Distributions Expose Backdoor Neurons, NeurIPS 2022 (EP)",
            stage="post",
            config="bdb_defense_ep.config:EPConfig",
            factory="bdb_defense_ep.defense:EP",
        )
    ]
