"""bdb plugin: Super-Fine-Tuning (entry point; light, no torch)."""

from bdcore import hookimpl
from bdcore import DefenseSpec


@hookimpl
def bdb_register_defenses() -> list[DefenseSpec]:
    return [
        DefenseSpec(
            name="sft",
            summary="fine-tune on the clean reserve with a cyclic lr: a high-peak cycle to forget, then a low-peak one to recover",
            paper="Sha, He, Berrang, Humbert & Zhang, Fine-Tuning Is All You Need to Mitigate Backdoor Attacks, arXiv 2212.09067, 2022",
            stage="post",
            test_settings={"forget_epochs": 1, "recover_epochs": 1},
            config="bdb_defense_sft.config:SFTConfig",
            factory="bdb_defense_sft.defense:SuperFineTuning",
        )
    ]
