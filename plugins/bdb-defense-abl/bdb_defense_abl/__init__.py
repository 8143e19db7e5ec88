"""bdb plugin: Anti-Backdoor Learning, ABL (entry point; light, no torch)."""

from bdcore import DefenseSpec, hookimpl


@hookimpl
def bdb_register_defenses() -> list[DefenseSpec]:
    return [
        DefenseSpec(
            name="abl",
            summary="train a fresh model with the LGA loss, isolate the lowest-loss 1% of the training set, keep "
                    "training on the rest, then unlearn the isolated samples by gradient ascent",
            paper="Li, Lyu, Koren, Lyu, Li & Ma, Anti-Backdoor Learning: Training Clean Models on Poisoned Data, "
                  "NeurIPS 2021",
            stage="in",
            presets={"quick": {"isolation_epochs": 10, "lga_schedule": "cosine", "lga_batch_size": 64,
                              "finetune_epochs": 4, "unlearn_epochs": 5, "unlearn_lr": 0.01,
                              "unlearn_augment": False}},
            test_settings={"isolation_epochs": 1, "finetune_epochs": 1, "unlearn_epochs": 1},
            caveat="in the mnist5k miniature its quick preset removes BadNets and collapses clean accuracy on Blended "
                   "and WaNet (BatchNorm drift); with the reference's augmented unlearning it removes WaNet (11 points "
                   "of accuracy) but not BadNets: no one setting removes both, see its README",
            config="bdb_defense_abl.config:ABLConfig",
            factory="bdb_defense_abl.defense:ABL",
        )
    ]
