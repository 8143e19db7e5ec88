"""bdb plugin: TeCo input detection (entry point; light, no torch)."""

from bdcore import DefenseSpec, hookimpl


@hookimpl
def bdb_register_defenses() -> list[DefenseSpec]:
    return [
        DefenseSpec(
            name="teco",
            summary="corrupt each input with 15 image corruptions at severities 1..5 and note the severity at which "
                    "the prediction first flips; a triggered input is robust to some corruptions and fragile to "
                    "others, so a large deviation of those severities flags it (threshold at 5% false rejections "
                    "on the clean reserve)",
            paper="Liu, Li, Wang, Hu, Ye, Jin, Wu & Xiao, Detecting Backdoors During the Inference Stage Based on "
                  "Corruption Robustness Consistency, CVPR 2023 (TeCo)",
            stage="detect-input",
            config="bdb_defense_teco.config:TeCoConfig",
            test_settings={"corruptions": ["gaussian_noise", "defocus_blur", "brightness"]},  # tiny runs: quick
            factory="bdb_defense_teco.defense:TeCo",
            caveat="inverted on MNIST (AUROC 0.19 BadNets, 0.01 Blended, 0.29 WaNet): CIFAR-C's photometric "
                   "corruptions erase clean digits early while the trigger survives them, so triggered digits flip "
                   "at more consistent severities than clean ones, the opposite of the paper's premise; see its README",
        )
    ]
