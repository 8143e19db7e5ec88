"""bdb plugin: the WaNet attack (entry point; light, no torch)."""

from bdcore import hookimpl
from bdcore import AttackSpec


@hookimpl
def bdb_register_attacks() -> list[AttackSpec]:
    return [
        AttackSpec(
            name="wanet",
            summary="fixed smooth image warp (grid_sample) as the trigger, trained with warped and noise-warped batches",
            paper="Nguyen & Tran, WaNet - Imperceptible Warping-based Backdoor Attack, ICLR 2021",
            kind="TC",
            config="bdb_attack_wanet.config:WaNetConfig",
            factory="bdb_attack_wanet.attack:WaNet",
        )
    ]
