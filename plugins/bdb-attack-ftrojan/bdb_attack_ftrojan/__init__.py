"""bdb plugin: the FTrojan attack (entry point; light, no torch)."""

from bdcore import hookimpl
from bdcore import AttackSpec


@hookimpl
def bdb_register_attacks() -> list[AttackSpec]:
    return [
        AttackSpec(
            name="ftrojan",
            summary="invisible trigger in the block DCT of the U,V channels (positions (15,15),(31,31), "
                    "magnitude 30), poisoned samples relabelled to the target",
            paper="Wang et al., An Invisible Black-box Backdoor Attack through Frequency Domain, ECCV 2022",
            kind="DP dirty-label",
            config="bdb_attack_ftrojan.config:FTrojanConfig",
            factory="bdb_attack_ftrojan.attack:FTrojan",
        )
    ]
