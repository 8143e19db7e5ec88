"""bdb plugin: Adversarial Neuron Pruning, ANP (entry point; light, no torch)."""

from bdcore import hookimpl
from bdcore import DefenseSpec


@hookimpl
def bdb_register_defenses() -> list[DefenseSpec]:
    return [
        DefenseSpec(
            name="anp",
            summary="learn per-neuron (BN) masks that keep the clean loss low under adversarial neuron "
                    "perturbations, then prune the neurons whose mask falls below a threshold",
            paper="Wu & Wang, Adversarial Neuron Pruning Purifies Backdoored Deep Models, NeurIPS 2021",
            stage="post",
            config="bdb_defense_anp.config:ANPConfig",
            factory="bdb_defense_anp.defense:ANP",
            test_settings={"iterations": 10},
            caveat="in the mnist5k miniature (200 mask iterations) it fails against Blended, and its BadNets ASR "
                   "after ranges 0.24-0.98 over seeds and kernel sets: see its README",
        )
    ]
