"""bdb plugin: the Input-Aware Dynamic Backdoor attack (entry point; light, no torch)."""

from bdcore import hookimpl
from bdcore import AttackSpec


@hookimpl
def bdb_register_attacks() -> list[AttackSpec]:
    return [
        AttackSpec(
            name="inputaware",
            summary="input-specific trigger: a generator's pattern through a mask network's mask, trained with the victim",
            paper="Nguyen & Tran, Input-Aware Dynamic Backdoor Attack, NeurIPS 2020",
            kind="TC",
            config="bdb_attack_inputaware.config:InputAwareConfig",
            factory="bdb_attack_inputaware.attack:InputAware",
            # the conformance kit's one-epoch runs: one mask pre-training epoch, small networks
            test_settings={"mask_epochs": 1, "channels": 8},
        )
    ]
