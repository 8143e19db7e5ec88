"""bdb plugin: Neural Attention Distillation (entry point; light, no torch)."""

from bdcore import hookimpl
from bdcore import DefenseSpec


@hookimpl
def bdb_register_defenses() -> list[DefenseSpec]:
    return [
        DefenseSpec(
            name="nad",
            summary="distil the attention maps of a clean-fine-tuned teacher into the backdoored model on the reserve",
            paper="Li, Lyu, Koren, Lyu, Li & Ma, Neural Attention Distillation: Erasing Backdoor Triggers from Deep Neural Networks, ICLR 2021",
            stage="post",
            caveat="does not erase Blended in the mnist5k miniature (ASR 0.971): the reserve-fine-tuned teacher "
                   "keeps the blended trigger, so there is no clean attention to distil; see its README",
            test_settings={"teacher_epochs": 1, "epochs": 1},
            config="bdb_defense_nad.config:NADConfig",
            factory="bdb_defense_nad.defense:NAD",
        )
    ]
