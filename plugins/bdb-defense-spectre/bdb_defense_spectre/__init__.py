"""bdb plugin: SPECTRE poisoned-data detection (entry point; light, no torch)."""

from bdcore import DefenseSpec, hookimpl


@hookimpl
def bdb_register_defenses() -> list[DefenseSpec]:
    return [
        DefenseSpec(
            name="spectre",
            summary="per class: project representations on the top principal components, whiten them with a robust "
                    "covariance estimate and score samples by quantum entropy (QUE); flag the top 1.5 x eps",
            paper="Hayase, Kong, Somani & Oh, SPECTRE: Defending Against Backdoor Attacks Using Robust Statistics, "
                  "ICML 2021",
            stage="detect-data",
            config="bdb_defense_spectre.config:SpectreConfig",
            factory="bdb_defense_spectre.defense:Spectre",
        )
    ]
