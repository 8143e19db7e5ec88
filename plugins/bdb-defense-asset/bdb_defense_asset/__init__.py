"""bdb plugin: ASSET poisoned-data detection (entry point; light, no torch)."""

from bdcore import DefenseSpec, hookimpl


@hookimpl
def bdb_register_defenses() -> list[DefenseSpec]:
    return [
        DefenseSpec(
            name="asset",
            summary="actively offset a fresh model: minimise its loss on the clean reserve and maximise it on the "
                    "training samples least like the reserve; clean samples' losses cancel out, poisoned ones grow, "
                    "and a 2-component Gaussian mixture on the losses flags them",
            paper="Pan, Zeng, Lyu, Lin & Jia, ASSET: Robust Backdoor Data Detection Across a Multiplicity of Deep "
                  "Learning Paradigms, USENIX Security 2023",
            stage="detect-data",
            config="bdb_defense_asset.config:ASSETConfig",
            test_settings={"disc_steps": 5},  # the conformance kit's tiny runs: keep them quick
            factory="bdb_defense_asset.defense:ASSET",
        )
    ]
