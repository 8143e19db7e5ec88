"""bdb plugin: Reconstructive Neuron Pruning, RNP (entry point; light, no torch)."""

from bdcore import hookimpl
from bdcore import DefenseSpec


@hookimpl
def bdb_register_defenses() -> list[DefenseSpec]:
    return [
        DefenseSpec(
            name="rnp",
            summary="unlearn the model on clean data by gradient ascent, learn BN-neuron masks that recover it, "
                    "and prune the neurons with small masks from the original model",
            paper="Li et al., Reconstructive Neuron Pruning for Backdoor Defense, ICML 2023",
            stage="post",
            caveat="in the mnist5k miniature at the reference's batch of 256 (one batch of the 200-image reserve per "
                   "epoch) it cuts BadNets to ASR 0.19-0.40 at 18-24 points of clean accuracy and removes WaNet "
                   "at seed 0 but not at seed 1 (ASR 0.998); at batch 128 it removed both at 31-57 points: see its "
                   "README",
            config="bdb_defense_rnp.config:RNPConfig",
            factory="bdb_defense_rnp.defense:RNP",
            test_settings={"mask_epochs": 2},
            presets={"quick": {"data_fraction": 1.0, "threshold": 0.1}},
            tuned={"quick": "its pruning threshold 0.1 was chosen by the ASR of the mnist5k / small-cnn BadNets victim "
                            "it is tested on"},
        )
    ]
