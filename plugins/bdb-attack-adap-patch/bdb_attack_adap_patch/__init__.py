"""bdb plugin: the Adaptive-Patch attack (entry point; light, no torch)."""

from bdcore import hookimpl
from bdcore import AttackSpec


@hookimpl
def bdb_register_attacks() -> list[AttackSpec]:
    return [
        AttackSpec(
            name="adap-patch",
            summary="4 small patch triggers at fixed spots; each poisoned sample carries one at reduced opacity, "
                    "test inputs all at full opacity; cover samples carry them but keep their label",
            paper="Qi, Xie, Li, Wang & Mittal, Revisiting the Assumption of Latent Separability for Backdoor "
                  "Defenses, ICLR 2023",
            kind="DP dirty-label",
            config="bdb_attack_adap_patch.config:AdapPatchConfig",
            factory="bdb_attack_adap_patch.attack:AdapPatch",
        )
    ]
