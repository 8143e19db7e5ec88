"""bdb plugin: the Hidden Trigger Backdoor attack (entry point; light, no torch)."""

from bdcore import AttackSpec, hookimpl


@hookimpl
def bdb_register_attacks() -> list[AttackSpec]:
    return [
        AttackSpec(
            name="htba",
            summary="target-class images perturbed (L-inf 16/255) so that a clean surrogate's features match "
                    "those of patched source images; labels kept, the patch only appears at test time",
            paper="Saha, Subramanya & Pirsiavash, Hidden Trigger Backdoor Attacks, AAAI 2020",
            kind="DP clean-label",
            config="bdb_attack_htba.config:HTBAConfig",
            factory="bdb_attack_htba.attack:HiddenTrigger",
            caveat="no backdoor forms in the mnist5k miniature, trained from scratch (ASR 0.007) or in the paper's "
                   "head-only fine-tuning of a pretrained network (ASR 0.03, as without the patch): see its README",
            test_settings={"surrogate_epochs": 1, "surrogate_lr": 0.1, "iterations": 2},
        )
    ]
