"""bdb plugin: Beatrix poisoned-data detection (entry point; light, no torch)."""

from bdcore import DefenseSpec, hookimpl


@hookimpl
def bdb_register_defenses() -> list[DefenseSpec]:
    return [
        DefenseSpec(
            name="beatrix",
            summary="compare each training sample's Gram-matrix feature correlations (orders 1..p) of a deep feature "
                    "map with its class's clean reserve statistics (median/MAD); flag large deviations",
            paper="Ma, Wang, Sun, Xue, Gao, Al-Sarawi & Abbott, Beatrix Resurrections: Robust Backdoor Detection via "
                  "Gram Matrices, NDSS 2023",
            stage="detect-data",
            caveat="flags no Blended sample in the mnist5k miniature at its e^2 threshold (TPR 0.000) though it "
                   "ranks them (AUROC 0.84); BadNets is flagged; see its README",
            config="bdb_defense_beatrix.config:BeatrixConfig",
            test_settings={"orders": 2},  # the conformance kit's tiny runs: keep them quick
            factory="bdb_defense_beatrix.defense:Beatrix",
        )
    ]
