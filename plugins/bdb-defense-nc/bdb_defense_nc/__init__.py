"""bdb plugin: the Neural Cleanse defense (entry point; light, no torch)."""

from bdcore import hookimpl
from bdcore import DefenseSpec


@hookimpl
def bdb_register_defenses() -> list[DefenseSpec]:
    return [
        DefenseSpec(
            name="nc",
            summary="reverse-engineer a minimal trigger per class, flag MAD outliers of the mask norms, "
                    "unlearn the flagged triggers by fine-tuning with them on true labels",
            paper="Wang et al., Neural Cleanse: Identifying and Mitigating Backdoor Attacks in Neural Networks, "
                  "IEEE S&P 2019",
            stage="post",
            caveat="in the mnist5k miniature the BadNets target's anomaly index is about 1.7-2.1, on both sides of "
                   "the paper's threshold 2 depending on seed and CPU (the clean classes' mask norms spread "
                   "widely); its tests flag at 1.5; see its README",
            config="bdb_defense_nc.config:NCConfig",
            factory="bdb_defense_nc.defense:NeuralCleanse",
            # the conformance kit's tiny run: a few reverse-engineering epochs and one unlearning epoch
            test_settings={"epochs": 3, "unlearn_epochs": 1},
        )
    ]
