"""bdb plugin: the Narcissus attack (entry point; light, no torch)."""

from bdcore import AttackSpec, hookimpl


@hookimpl
def bdb_register_attacks() -> list[AttackSpec]:
    return [
        AttackSpec(
            name="narcissus",
            summary="an L-inf 16/255 trigger synthesised on a clean surrogate to point at the target class, added "
                    "to a few target-class images (clean-label), magnified x3 at test time",
            paper="Zeng, Pan, Just, Lyu & Jia, Narcissus: A Practical Clean-Label Backdoor Attack with Limited "
                  "Information, ACM CCS 2023",
            kind="DP clean-label",
            config="bdb_attack_narcissus.config:NarcissusConfig",
            factory="bdb_attack_narcissus.attack:Narcissus",
            test_settings={"surrogate_epochs": 1, "surrogate_lr": 0.1, "rounds": 1},
        )
    ]
