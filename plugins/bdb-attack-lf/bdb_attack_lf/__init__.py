"""bdb plugin: the Low Frequency (LF) attack (entry point; light, no torch)."""

from bdcore import AttackSpec, hookimpl


@hookimpl
def bdb_register_attacks() -> list[AttackSpec]:
    return [
        AttackSpec(
            name="lf",
            summary="a smooth universal adversarial perturbation towards the target (DeepFool on a clean surrogate, "
                    "6-pixel Gaussian smoothing, rescaled to 0-51 grey levels) added to the image; poisoned "
                    "samples relabelled",
            paper="Zeng, Park, Mao & Jia, Rethinking the Backdoor Attacks' Triggers: A Frequency Perspective, ICCV 2021",
            kind="DP dirty-label",
            config="bdb_attack_lf.config:LFConfig",
            factory="bdb_attack_lf.attack:LowFrequency",
            test_settings={"surrogate_epochs": 1, "surrogate_lr": 0.1, "max_iter_uni": 1, "samples": 16,
                           "rate_per_class": 2, "max_iter_df": 3},
        )
    ]
