"""bdb plugin: STRIP input detection (entry point; light, no torch)."""

from bdcore import DefenseSpec, hookimpl


@hookimpl
def bdb_register_defenses() -> list[DefenseSpec]:
    return [
        DefenseSpec(
            name="strip",
            summary="superimpose each input with random clean images; a trojaned input keeps its prediction, so a low "
                    "mean prediction entropy flags it (threshold at 5% false rejections on the clean reserve)",
            paper="Gao, Xu, Wang, Chen, Ranasinghe & Nepal, STRIP: A Defence Against Trojan Attacks on Deep Neural "
                  "Networks, ACSAC 2019",
            stage="detect-input",
            config="bdb_defense_strip.config:STRIPConfig",
            test_settings={"n": 4},  # the conformance kit's tiny runs: keep them quick
            factory="bdb_defense_strip.defense:STRIP",
        )
    ]
