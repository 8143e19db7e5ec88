"""bdb plugin: Neural Polarizer defense, NPD (entry point; light, no torch)."""

from bdcore import hookimpl
from bdcore import DefenseSpec


@hookimpl
def bdb_register_defenses() -> list[DefenseSpec]:
    return [
        DefenseSpec(
            name="npd",
            summary="insert a learnable linear (1x1 conv) layer before the last block's first convolution and "
                    "train only it to filter trigger features: targeted adversarial examples are unlearned, clean "
                    "accuracy kept",
            paper="Zhu et al., Neural Polarizer: A Lightweight and Effective Backdoor Defense via Purifying "
                  "Poisoned Features, NeurIPS 2023",
            stage="post",
            caveat="in the mnist5k miniature it removes WaNet and BadNets on every kernel set and seed measured "
                   "(ASR <= 0.13) at up to 23 (WaNet) and 28 (BadNets) points of clean accuracy; see its README "
                   "and tests/THRESHOLDS.md",
            config="bdb_defense_npd.config:NPDConfig",
            factory="bdb_defense_npd.defense:NPD",
            test_settings={"epochs": 1},
            presets={"quick": {"epochs": 20, "batch_size": 64}},
        )
    ]
