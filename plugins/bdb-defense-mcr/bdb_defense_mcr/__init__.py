"""bdb plugin: Mode Connectivity Repair, MCR (entry point; light, no torch)."""

from bdcore import hookimpl
from bdcore import DefenseSpec


@hookimpl
def bdb_register_defenses() -> list[DefenseSpec]:
    return [
        DefenseSpec(
            name="mcr",
            summary="train a quadratic Bezier curve of weights between the backdoored model and a fine-tuned copy "
                    "on the clean reserve and take a point near the backdoored end, where the backdoor is gone",
            paper="Zhao et al., Bridging Mode Connectivity in Loss Landscapes and Adversarial Robustness, ICLR 2020",
            stage="post",
            config="bdb_defense_mcr.config:MCRConfig",
            factory="bdb_defense_mcr.defense:MCR",
            test_settings={"ft_epochs": 1, "curve_epochs": 1},
            presets={"quick": {"ft_epochs": 20, "curve_epochs": 20, "batch_size": 16}},
        )
    ]
