"""bdb plugin: the LIRA attack (entry point; light, no torch)."""

from bdcore import hookimpl
from bdcore import AttackSpec


@hookimpl
def bdb_register_attacks() -> list[AttackSpec]:
    return [
        AttackSpec(
            name="lira",
            summary="learnable imperceptible additive trigger eps * T(x) from an autoencoder trained with the victim",
            paper="Doan et al., LIRA: Learnable, Imperceptible and Robust Backdoor Attacks, ICCV 2021",
            kind="TC",
            config="bdb_attack_lira.config:LiraConfig",
            factory="bdb_attack_lira.attack:Lira",
        )
    ]
