"""bdb plugin: Implicit Backdoor Adversarial Unlearning, I-BAU (entry point; light, no torch)."""

from bdcore import hookimpl
from bdcore import DefenseSpec


@hookimpl
def bdb_register_defenses() -> list[DefenseSpec]:
    return [
        DefenseSpec(
            name="i-bau",
            summary="min-max unlearning: a universal adversarial perturbation on the clean reserve (inner max), "
                    "model updates with the implicit hypergradient through its fixed point (outer min)",
            paper="Zeng, Chen, Park, Mao, Jin & Jia, Adversarial Unlearning of Backdoors via Implicit Hypergradient, "
                  "ICLR 2022",
            stage="post",
            config="bdb_defense_i_bau.config:IBAUConfig",
            factory="bdb_defense_i_bau.defense:IBAU",
            test_settings={"rounds": 1},
        )
    ]
