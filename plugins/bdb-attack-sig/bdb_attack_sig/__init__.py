"""bdb plugin: the SIG attack (entry point; light, no torch)."""

from bdcore import hookimpl
from bdcore import AttackSpec


@hookimpl
def bdb_register_attacks() -> list[AttackSpec]:
    return [
        AttackSpec(
            name="sig",
            summary="horizontal sinusoid added to target-class training images, labels kept (clean-label)",
            paper="Barni, Kallas & Tondi, A New Backdoor Attack in CNNs by Training Set Corruption "
                  "Without Label Poisoning, ICIP 2019",
            kind="DP clean-label",
            config="bdb_attack_sig.config:SIGConfig",
            factory="bdb_attack_sig.attack:SIG",
        )
    ]
