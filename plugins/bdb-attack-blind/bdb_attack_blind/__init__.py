"""bdb plugin: the Blind Backdoors attack (entry point; light, no torch)."""

from bdcore import hookimpl
from bdcore import AttackSpec


@hookimpl
def bdb_register_attacks() -> list[AttackSpec]:
    return [
        AttackSpec(
            name="blind",
            summary="poisoned loss computation: a pattern-stamped copy of each batch labelled with the target "
                    "adds a weighted backdoor loss once the running clean loss is low",
            paper="Bagdasaryan & Shmatikov, Blind Backdoors in Deep Learning Models, USENIX Security 2021",
            kind="TC",
            config="bdb_attack_blind.config:BlindConfig",
            factory="bdb_attack_blind.attack:Blind",
        )
    ]
