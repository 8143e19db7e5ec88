"""bdb plugin: the Sample-Specific Backdoor Attack (entry point; light, no torch)."""

from bdcore import AttackSpec, hookimpl


@hookimpl
def bdb_register_attacks() -> list[AttackSpec]:
    return [
        AttackSpec(
            name="ssba",
            summary="an invisible, sample-specific trigger: a StegaStamp-style encoder trained on the data hides a "
                    "fixed code in each image (its residual is the trigger); poisoned samples relabelled",
            paper="Li, Li, Wu, Li, He & Lyu, Invisible Backdoor Attack with Sample-Specific Triggers, ICCV 2021",
            kind="DP dirty-label",
            config="bdb_attack_ssba.config:SSBAConfig",
            factory="bdb_attack_ssba.attack:SampleSpecific",
            test_settings={"epochs": 1, "batch_size": 256, "lr": 1e-3, "bits": 8, "width": 8},
        )
    ]
