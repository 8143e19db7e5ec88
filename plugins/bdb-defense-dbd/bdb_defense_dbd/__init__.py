"""bdb plugin: Backdoor Defense via Decoupling the Training Process, DBD (entry point; light, no torch)."""

from bdcore import DefenseSpec, hookimpl


@hookimpl
def bdb_register_defenses() -> list[DefenseSpec]:
    return [
        DefenseSpec(
            name="dbd",
            summary="self-supervised (SimCLR) backbone on the training images without labels, linear head trained "
                    "with symmetric cross-entropy on the frozen backbone, then the low-loss half kept labelled and "
                    "the rest unlabelled for semi-supervised (MixMatch) fine-tuning of the whole model",
            paper="Huang, Li, Wu, Qin & Ren, Backdoor Defense via Decoupling the Training Process, ICLR 2022",
            stage="in",
            presets={"quick": {"simclr_epochs": 10, "simclr_batch_size": 128, "warmup_epochs": 5, "semi_epochs": 5}},
            test_settings={"simclr_epochs": 1, "warmup_epochs": 1, "semi_epochs": 1},
            config="bdb_defense_dbd.config:DBDConfig",
            factory="bdb_defense_dbd.defense:DBD",
            caveat="fails in the mnist5k miniature (BadNets: C-ACC 0.97 -> 0.57, ASR 1.00 -> 0.46; short "
                   "SimCLR on small-cnn makes the trigger a dominant feature, so poisoned samples stay "
                   "trusted): not shown to work here, see its README",
        )
    ]
