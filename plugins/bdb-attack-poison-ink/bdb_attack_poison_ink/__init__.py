"""bdb plugin: the Poison Ink attack (entry point; light, no torch)."""

from bdcore import AttackSpec, hookimpl


@hookimpl
def bdb_register_attacks() -> list[AttackSpec]:
    return [
        AttackSpec(
            name="poison-ink",
            summary="each image's Sobel edges, coloured on a white canvas, hidden in the image by a hiding network "
                    "trained with a reveal network; the victim trains on each clean batch plus a batch of the "
                    "poisoned set (containers relabelled, clean originals kept)",
            paper="Zhang, Chen, Liao, Zhang, Hua & Yu, Poison Ink: Robust and Invisible Backdoor Attack, "
                  "IEEE Transactions on Image Processing 2022",
            kind="TC",
            config="bdb_attack_poison_ink.config:PoisonInkConfig",
            factory="bdb_attack_poison_ink.attack:PoisonInk",
            test_settings={"epochs": 1, "batch_size": 256, "lr": 1e-3, "width": 4, "depth": 2, "reveal_width": 4,
                           "stages": ["none"]},
        )
    ]
