"""bdb plugin: Beatrix poisoned-data detection (entry point; light, no torch)."""

from bdcore import DefenseSpec, hookimpl


@hookimpl
def bdb_register_defenses() -> list[DefenseSpec]:
    return [
        DefenseSpec(
            name="beatrix",
            summary="compare each training sample's Gram-matrix feature correlations (orders 1..p) of a deep feature "
                    "map with its predicted class's clean reserve statistics (median/MAD); flag deviations above the "
                    "class's 5-fold 95th percentile",
            paper="Ma, Wang, Sun, Xue, Gao, Al-Sarawi & Abbott, Beatrix Resurrections: Robust Backdoor Detection via "
                  "Gram Matrices, NDSS 2023",
            stage="detect-data",
            config="bdb_defense_beatrix.config:BeatrixConfig",
            test_settings={"orders": 2},  # the conformance kit's tiny runs: keep them quick
            factory="bdb_defense_beatrix.defense:Beatrix",
        )
    ]
