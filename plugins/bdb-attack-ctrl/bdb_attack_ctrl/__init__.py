"""bdb plugin: the CTRL attack (entry point; light, no torch)."""

from bdcore import hookimpl
from bdcore import AttackSpec


@hookimpl
def bdb_register_attacks() -> list[AttackSpec]:
    return [
        AttackSpec(
            name="ctrl",
            summary="spectral trigger in the U,V channels' DCT (positions 15 and 31, magnitude 100) on "
                    "target-class images, labels kept (clean-label)",
            paper="Li et al., An Embarrassingly Simple Backdoor Attack on Self-supervised Learning, ICCV 2023",
            kind="DP clean-label",
            config="bdb_attack_ctrl.config:CTRLConfig",
            factory="bdb_attack_ctrl.attack:CTRL",
        )
    ]
