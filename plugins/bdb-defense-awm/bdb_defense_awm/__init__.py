"""bdb plugin: the Adversarial Weight Masking defense (entry point; light, no torch)."""

from bdcore import hookimpl
from bdcore import DefenseSpec


@hookimpl
def bdb_register_defenses() -> list[DefenseSpec]:
    return [
        DefenseSpec(
            name="awm",
            summary="min-max: recover a worst-case universal trigger, learn a soft [0, 1] mask over the conv "
                    "weights that keeps clean and triggered inputs correct, apply the mask; works one-shot",
            paper="Chai & Chen, One-shot Neural Backdoor Erasing via Adversarial Weight Masking, NeurIPS 2022",
            stage="post",
            config="bdb_defense_awm.config:AWMConfig",
            factory="bdb_defense_awm.defense:AdversarialWeightMasking",
            # the conformance kit's tiny run: two outer rounds of one inner epoch
            test_settings={"outer_epochs": 2, "inner_epochs": 1},
        )
    ]
