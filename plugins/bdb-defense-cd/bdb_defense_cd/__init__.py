"""bdb plugin: Cognitive Distillation poisoned-data detection (entry point; light, no torch)."""

from bdcore import DefenseSpec, hookimpl


@hookimpl
def bdb_register_defenses() -> list[DefenseSpec]:
    return [
        DefenseSpec(
            name="cd",
            summary="distil each training image to the smallest input mask that keeps the model's output (L1 + total "
                    "variation penalty); backdoored images need only their trigger, so a small mask norm flags them",
            paper="Huang, Ma, Erfani & Bailey, Distilling Cognitive Backdoor Patterns within an Image, ICLR 2023 "
                  "(Cognitive Distillation)",
            stage="detect-data",
            config="bdb_defense_cd.config:CDConfig",
            test_settings={"steps": 2},  # the conformance kit's tiny runs: keep them quick
            factory="bdb_defense_cd.defense:CognitiveDistillation",
            caveat="misses BadNets and WaNet on MNIST (AUROC 0.51 / 0.52 at 10 mask steps, 0.45 / 0.41 at 100) while "
                   "it finds Blended (0.99): the random grey fill is foreign to black-background digits, so masks keep "
                   "the background on poisoned and clean images alike; see its README",
        )
    ]
