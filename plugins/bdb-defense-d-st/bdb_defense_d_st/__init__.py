"""bdb plugin: secure training by the sensitivity of poisoned samples, D-ST (entry point; light, no torch)."""

from bdcore import DefenseSpec, hookimpl


@hookimpl
def bdb_register_defenses() -> list[DefenseSpec]:
    return [
        DefenseSpec(
            name="d-st",
            summary="separate the poisoned training set by FCT (feature change under rotation + translation), train "
                    "a feature extractor from scratch with semi-supervised contrastive learning (labels of the "
                    "trusted clean samples only), then a linear classifier on the trusted samples",
            paper="Chen, Wu & Wang, Effective Backdoor Defense by Exploiting Sensitivity of Poisoned Samples, "
                  "NeurIPS 2022",
            stage="in",
            presets={"quick": {"extractor_epochs": 8, "extractor_lr": 0.1, "extractor_batch_size": 128,
                               "classifier_lr": 0.1, "classifier_batch_size": 64, "classifier_augment": False,
                               "standardize_features": True}},
            test_settings={"warm_epochs": 1, "intra_epochs": 1, "extractor_epochs": 1, "classifier_epochs": 1},
            config="bdb_defense_d_st.config:DSTConfig",
            factory="bdb_defense_d_st.defense:DST",
        )
    ]
