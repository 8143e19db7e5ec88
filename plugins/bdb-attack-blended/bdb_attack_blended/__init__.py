"""bdb plugin: the Blended attack (entry point; light, no torch)."""

from bdcore import hookimpl
from bdcore import AttackSpec


@hookimpl
def bdb_register_attacks() -> list[AttackSpec]:
    return [
        AttackSpec(
            name="blended",
            summary="trigger image alpha-blended over the whole input (default: fixed-seed random pattern)",
            paper="Chen et al., Targeted Backdoor Attacks on Deep Learning Systems Using Data Poisoning, arXiv 2017",
            kind="DP dirty-label",
            config="bdb_attack_blended.config:BlendedConfig",
            factory="bdb_attack_blended.attack:Blended",
        )
    ]
