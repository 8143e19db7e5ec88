"""bdb plugin: the BadNets attack (entry point; light, no torch)."""

from bdcore import hookimpl
from bdcore import AttackSpec


@hookimpl
def bdb_register_attacks() -> list[AttackSpec]:
    return [
        AttackSpec(
            name="badnet",
            summary="white 3x3 patch in the bottom-right corner, poisoned samples relabelled to the target",
            paper="Gu et al., BadNets: Evaluating Backdooring Attacks on Deep Neural Networks, IEEE Access 2019",
            kind="DP dirty-label",
            config="bdb_attack_badnet.config:BadNetConfig",
            factory="bdb_attack_badnet.attack:BadNet",
        )
    ]
