"""bdb plugin: the Label-Consistent attack (entry point; light, no torch)."""

from bdcore import AttackSpec, hookimpl


@hookimpl
def bdb_register_attacks() -> list[AttackSpec]:
    return [
        AttackSpec(
            name="lc",
            summary="target-class images made hard with PGD on a clean surrogate, then stamped with a "
                    "4-corner checkerboard; labels kept (clean-label)",
            paper="Turner, Tsipras & Madry, Label-Consistent Backdoor Attacks, arXiv:1912.02771, 2019",
            kind="DP clean-label",
            config="bdb_attack_lc.config:LCConfig",
            factory="bdb_attack_lc.attack:LabelConsistent",
            test_settings={"surrogate_epochs": 1, "surrogate_lr": 0.1, "surrogate_adv_steps": 1, "steps": 3},
        )
    ]
