"""bdb plugin: the Poison Ink attack (entry point; light, no torch)."""

from bdcore import AttackSpec, hookimpl


@hookimpl
def bdb_register_attacks() -> list[AttackSpec]:
    return [
        AttackSpec(
            name="poison-ink",
            summary="each image's edge structure, coloured with a trigger colour, hidden in the image by an "
                    "injection network trained with an extraction network; poisoned samples relabelled",
            paper="Zhang, Chen, Liao, Zhang, Hua & Yu, Poison Ink: Robust and Invisible Backdoor Attack, "
                  "IEEE Transactions on Image Processing 2022",
            kind="DP dirty-label",
            config="bdb_attack_poison_ink.config:PoisonInkConfig",
            factory="bdb_attack_poison_ink.attack:PoisonInk",
            test_settings={"epochs": 1, "batch_size": 256, "lr": 1e-3, "width": 4},
        )
    ]
