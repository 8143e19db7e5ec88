"""bdb plugin: the fine-tuning baseline defense (entry point; light, no torch)."""

from bdcore import hookimpl
from bdcore import DefenseSpec


@hookimpl
def bdb_register_defenses() -> list[DefenseSpec]:
    return [
        DefenseSpec(
            name="ft",
            summary="fine-tune the backdoored model on the clean reserve with a cosine schedule",
            paper="Fine-tuning baseline (as evaluated in Liu et al., Fine-Pruning, RAID 2018; BackdoorBench)",
            stage="post",
            presets={"quick": {"epochs": 20}},
            config="bdb_defense_ft.config:FTConfig",
            factory="bdb_defense_ft.defense:FineTune",
        )
    ]
