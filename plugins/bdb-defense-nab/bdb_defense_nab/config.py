"""NAB settings (paper defaults where the paper gives them; CATALOG.md)."""

from pydantic import Field

from bdcore import LGASettings


class NABConfig(LGASettings):
    """LGA detection, defensive trigger + stand-in relabelling, training, trigger at test time.

    The detection stage's settings come from `bdcore.LGASettings` (ABL's gamma 0.5 and 20 epochs,
    the reference's lr 0.01 on plain images); NAB detects 10% on mini-batches of 64 (the reference)."""

    lga_batch_size: int | None = Field(64, ge=1, description="mini-batch of the LGA stage (reference 64); None: the "
                                                             "victim recipe's")
    isolation_ratio: float = Field(0.1, gt=0, lt=1, description="share of the training set detected as "
                                                                "suspicious: the lowest LGA losses (reference 0.1)")
    patch: int = Field(3, ge=1, description="side of the defensive trigger: a white square in the top-left corner "
                                            "(the attack's BadNets square sits bottom-right)")
    relabel_epochs: int = Field(100, ge=1, description="epochs of the stand-in labeller trained on the clean reserve "
                                                       "(replaces the paper's self-supervised labeller)")
    train_epochs: int | None = Field(None, ge=1, description="epochs of the final training on the stamped, relabelled "
                                                             "set; None: the victim recipe's")
    batch_size: int = Field(256, ge=1, description="batch size of the forward passes (losses, relabelling)")
