"""bdb plugin: the Refool reflection backdoor (entry point; light, no torch)."""

from bdcore import hookimpl
from bdcore import AttackSpec


@hookimpl
def bdb_register_attacks() -> list[AttackSpec]:
    return [
        AttackSpec(
            name="refool",
            summary="reflections of other images (in focus, out of focus, ghost) blended into the input as the trigger",
            paper="Liu, Ma, Bailey & Lu, Reflection Backdoor: A Natural Backdoor Attack on Deep Neural Networks, ECCV 2020",
            kind="DP dirty-label",
            config="bdb_attack_refool.config:RefoolConfig",
            factory="bdb_attack_refool.attack:Refool",
        )
    ]
