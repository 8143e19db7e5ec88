"""bdb plugin: Beating Backdoor Attack at Its Own Game, NAB (entry point; light, no torch)."""

from bdcore import DefenseSpec, hookimpl


@hookimpl
def bdb_register_defenses() -> list[DefenseSpec]:
    return [
        DefenseSpec(
            name="nab",
            summary="isolate suspicious training samples by LGA, stamp them with a defensive trigger and relabel "
                    "them with a stand-in label, train a fresh model, and stamp the defensive trigger on every input",
            paper="Liu, Sangiovanni-Vincentelli & Yue, Beating Backdoor Attack at Its Own Game, ICCV 2023",
            stage="in",
            presets={"quick": {"isolation_epochs": 10, "lga_schedule": "cosine", "train_epochs": 5}},
            test_settings={"isolation_epochs": 1, "relabel_epochs": 1, "train_epochs": 1},
            config="bdb_defense_nab.config:NABConfig",
            factory="bdb_defense_nab.defense:NAB",
        )
    ]
