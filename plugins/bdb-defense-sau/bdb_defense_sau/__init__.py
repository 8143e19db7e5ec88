"""bdb plugin: Shared Adversarial Unlearning, SAU (entry point; light, no torch)."""

from bdcore import hookimpl
from bdcore import DefenseSpec


@hookimpl
def bdb_register_defenses() -> list[DefenseSpec]:
    return [
        DefenseSpec(
            name="sau",
            summary="find adversarial examples that fool the model and the backdoored original into the same class "
                    "(shared adversarial examples) and unlearn them while keeping clean accuracy",
            paper="Wei et al., Shared Adversarial Unlearning: Backdoor Mitigation by Unlearning Shared Adversarial "
                  "Examples, NeurIPS 2023",
            stage="post",
            caveat="removes WaNet and Blended but not BadNets in the mnist5k miniature (BadNets ASR 0.90): the white "
                   "corner patch on black digits lies outside the 0.2 L-inf ball of its shared adversarial "
                   "examples; see its README",
            config="bdb_defense_sau.config:SAUConfig",
            factory="bdb_defense_sau.defense:SAU",
            presets={"quick": {"rounds": 20, "batch_size": 32}},
            test_settings={"rounds": 1},
        )
    ]
