"""bdb plugin: the Low Frequency (LF) attack (entry point; light, no torch)."""

from bdcore import AttackSpec, hookimpl


@hookimpl
def bdb_register_attacks() -> list[AttackSpec]:
    return [
        AttackSpec(
            name="lf",
            summary="a smooth (Gaussian low-passed) universal adversarial perturbation towards the target, found "
                    "with DeepFool on a clean surrogate and added to the image; poisoned samples relabelled",
            paper="Zeng, Park, Mao & Jia, Rethinking the Backdoor Attacks' Triggers: A Frequency Perspective, ICCV 2021",
            kind="DP dirty-label",
            config="bdb_attack_lf.config:LFConfig",
            factory="bdb_attack_lf.attack:LowFrequency",
            test_settings={"surrogate_epochs": 1, "surrogate_lr": 0.1, "max_iter_uni": 1, "samples": 64,
                           "batch_size": 64, "max_iter_df": 3},
        )
    ]
