"""bdb plugin: Fine-Pruning (entry point; light, no torch)."""

from bdcore import hookimpl
from bdcore import DefenseSpec


@hookimpl
def bdb_register_defenses() -> list[DefenseSpec]:
    return [
        DefenseSpec(
            name="fp",
            summary="prune the last conv layer's least-active channels on clean data (validation-bounded), then fine-tune",
            paper="Liu, Dolan-Gavitt & Garg, Fine-Pruning: Defending Against Backdooring Attacks on Deep Neural Networks, RAID 2018",
            stage="post",
            presets={"quick": {"epochs": 20}},
            test_settings={"epochs": 1},
            config="bdb_defense_fp.config:FPConfig",
            factory="bdb_defense_fp.defense:FinePruning",
        )
    ]
