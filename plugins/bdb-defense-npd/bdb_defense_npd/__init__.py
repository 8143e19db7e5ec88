"""bdb plugin: Neural Polarizer defense, NPD (entry point; light, no torch)."""

from bdcore import hookimpl
from bdcore import DefenseSpec


@hookimpl
def bdb_register_defenses() -> list[DefenseSpec]:
    return [
        DefenseSpec(
            name="npd",
            summary="insert a learnable linear (1x1 conv) layer after the last block and train only it to "
                    "filter trigger features: targeted adversarial examples are unlearned, clean accuracy kept",
            paper="Zhu et al., Neural Polarizer: A Lightweight and Effective Backdoor Defense via Purifying "
                  "Poisoned Features, NeurIPS 2023",
            stage="post",
            caveat="removes WaNet in the mnist5k miniature on every kernel set and seed measured, BadNets on some "
                   "only (ASR after it 0.19 and 0.38 at seed 0 under AVX-512 and AVX2, 0.95 at seed 1); see "
                   "tests/THRESHOLDS.md",
            config="bdb_defense_npd.config:NPDConfig",
            factory="bdb_defense_npd.defense:NPD",
            test_settings={"epochs": 1},
            presets={"quick": {"epochs": 20, "batch_size": 64}},
        )
    ]
