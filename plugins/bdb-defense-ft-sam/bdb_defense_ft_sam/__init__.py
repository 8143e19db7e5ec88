"""bdb plugin: fine-tuning with sharpness-aware minimisation, FT-SAM (entry point; light, no torch)."""

from bdcore import hookimpl
from bdcore import DefenseSpec


@hookimpl
def bdb_register_defenses() -> list[DefenseSpec]:
    return [
        DefenseSpec(
            name="ft-sam",
            summary="fine-tune on the clean reserve with adaptive sharpness-aware minimisation, which perturbs "
                    "large (backdoor-related) weights most, and label smoothing",
            paper="Zhu et al., Enhancing Fine-Tuning Based Backdoor Defense with Sharpness-Aware Minimization, ICCV 2023",
            stage="post",
            caveat="removes WaNet in the mnist5k miniature on some seeds only (ASR after it 0.04-0.08 at seed 0, "
                   "0.44 and 0.76 at seeds 1 and 2); BadNets's ASR falls to 0.15-0.45; see tests/THRESHOLDS.md",
            config="bdb_defense_ft_sam.config:FTSAMConfig",
            factory="bdb_defense_ft_sam.defense:FTSAM",
            test_settings={"epochs": 1},
            presets={"quick": {"epochs": 20, "batch_size": 64}},
        )
    ]
