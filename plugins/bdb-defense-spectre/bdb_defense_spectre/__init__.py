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
            caveat="does not rank Blended poison at 10% in the mnist5k miniature (AUROC 0.538): half the target "
                   "class is poisoned, so the robust estimate has no clean majority to fit; see its README",
            config="bdb_defense_spectre.config:SpectreConfig",
            factory="bdb_defense_spectre.defense:Spectre",
        )
    ]
