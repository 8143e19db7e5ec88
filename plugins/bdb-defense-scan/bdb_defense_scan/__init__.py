"""bdb plugin: SCAn poisoned-data detection (entry point; light, no torch)."""

from bdcore import DefenseSpec, hookimpl


@hookimpl
def bdb_register_defenses() -> list[DefenseSpec]:
    return [
        DefenseSpec(
            name="scan",
            summary="decompose representations into class identity and shared variation (EM on the clean reserve), test "
                    "each class for two components with a likelihood ratio, flag outlier classes by MAD and the "
                    "component of their samples that the clean reserve does not occupy",
            paper="Tang, Wang, Tang & Zhang, Demon in the Variant: Statistical Analysis of DNNs for Robust Backdoor "
                  "Contamination Detection, USENIX Security 2021 (SCAn)",
            stage="detect-data",
            config="bdb_defense_scan.config:SCAnConfig",
            factory="bdb_defense_scan.defense:SCAn",
        )
    ]
