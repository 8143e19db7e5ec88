"""bdb plugin: the BppAttack attack (entry point; light, no torch)."""

from bdcore import hookimpl
from bdcore import AttackSpec


@hookimpl
def bdb_register_attacks() -> list[AttackSpec]:
    return [
        AttackSpec(
            name="bpp",
            summary="colour-depth squeezing (image quantisation, optional Floyd-Steinberg dithering) as the trigger, "
                    "with contrastive negative samples in each batch",
            paper="Wang, Zhai & Ma, BppAttack: Stealthy and Efficient Trojan Attacks against Deep Neural Networks "
                  "via Image Quantization and Contrastive Adversarial Learning, CVPR 2022",
            kind="TC",
            config="bdb_attack_bpp.config:BppConfig",
            factory="bdb_attack_bpp.attack:Bpp",
        )
    ]
