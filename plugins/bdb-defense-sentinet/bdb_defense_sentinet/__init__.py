"""bdb plugin: SentiNet input detection (entry point; light, no torch)."""

from bdcore import DefenseSpec, hookimpl


@hookimpl
def bdb_register_defenses() -> list[DefenseSpec]:
    return [
        DefenseSpec(
            name="sentinet",
            summary="cut each input's Grad-CAM salient region out and paste it on clean images: a trigger region fools "
                    "most of them while an inert noise patch in the same place leaves the model confident; inputs "
                    "above the clean reserve's fooled-rate boundary are flagged",
            paper="Chou, Tramer & Pellegrino, SentiNet: Detecting Localized Universal Attacks Against Deep Learning "
                  "Systems, IEEE S&P Workshops (SPW) 2020",
            stage="detect-input",
            config="bdb_defense_sentinet.config:SentiNetConfig",
            test_settings={"n_clean": 8},  # the conformance kit's tiny runs: keep them quick
            factory="bdb_defense_sentinet.defense:SentiNet",
        )
    ]
