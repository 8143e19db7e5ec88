"""bdb plugin: the Adaptive-Blend attack (entry point; light, no torch)."""

from bdcore import hookimpl
from bdcore import AttackSpec


@hookimpl
def bdb_register_attacks() -> list[AttackSpec]:
    return [
        AttackSpec(
            name="adap-blend",
            summary="blend trigger split into 16 pieces, half of them per poisoned sample (alpha 0.15; full trigger "
                    "at alpha 0.2 at test), plus cover samples that carry it but keep their label",
            paper="Qi, Xie, Li, Wang & Mittal, Revisiting the Assumption of Latent Separability for Backdoor "
                  "Defenses, ICLR 2023",
            kind="DP dirty-label",
            config="bdb_attack_adap_blend.config:AdapBlendConfig",
            factory="bdb_attack_adap_blend.attack:AdapBlend",
        )
    ]
