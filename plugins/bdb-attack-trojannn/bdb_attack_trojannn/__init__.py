"""bdb plugin: the TrojanNN attack (entry point; light, no torch)."""

from bdcore import AttackSpec, hookimpl


@hookimpl
def bdb_register_attacks() -> list[AttackSpec]:
    return [
        AttackSpec(
            name="trojannn",
            summary="a mask image moved by signed steps until it drives the most connected penultimate neurons of "
                    "a clean surrogate to a high value, added to the image in uint8; poisoned samples relabelled "
                    "to the target",
            paper="Liu, Ma, Aafer, Lee, Zhai, Wang & Zhang, Trojaning Attack on Neural Networks, NDSS 2018",
            kind="DP dirty-label",
            config="bdb_attack_trojannn.config:TrojanNNConfig",
            factory="bdb_attack_trojannn.attack:TrojanNN",
            test_settings={"surrogate_epochs": 1, "surrogate_lr": 0.1, "iterations": 5},
        )
    ]
