"""bdb plugin: Spectral Signatures (entry point; light, no torch)."""

from bdcore import DefenseSpec, hookimpl


@hookimpl
def bdb_register_defenses() -> list[DefenseSpec]:
    return [
        DefenseSpec(
            name="spectral",
            summary="score each sample by its squared projection on the top singular vector of its class's centred "
                    "penultimate features and remove the top 1.5 x eps per class; the harness retrains on the rest",
            paper="Tran, Li & Madry, Spectral Signatures in Backdoor Attacks, NeurIPS 2018",
            stage="pre",
            caveat="does not remove Blended at 10% poison in the mnist5k miniature (ASR 1.000): the target class "
                   "is half poisoned, and the top 1.5 x eps by score catch only a fifth of the poison; see its "
                   "README",
            config="bdb_defense_spectral.config:SpectralConfig",
            factory="bdb_defense_spectral.defense:SpectralSignatures",
        )
    ]
