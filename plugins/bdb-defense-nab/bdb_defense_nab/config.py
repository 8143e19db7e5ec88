"""NAB settings (paper defaults where the paper gives them; CATALOG.md)."""

from typing import Literal

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
    patch: int = Field(2, ge=1, description="side of the defensive trigger, a square in the top-left corner "
                                            "(reference: 2; the attack's BadNets square sits bottom-right)")
    trigger_value: Literal["mean", "white"] = Field(
        "mean", description="colour of the defensive square: the dataset's mean (the reference: 0 in the normalised "
                            "space), or white (this plugin until issue 27)")
    stamp: Literal["changed", "all"] = Field(
        "changed", description="which detected samples get the defensive trigger: only those whose stand-in label "
                               "differs from their given label (the reference), or all; every detected sample takes "
                               "the stand-in label either way")
    relabel_epochs: int = Field(100, ge=1, description="epochs of the stand-in labeller trained on the clean reserve "
                                                       "(replaces the paper's self-supervised labeller)")
    train_epochs: int | None = Field(None, ge=1, description="epochs of the final training on the stamped, relabelled "
                                                             "set; None: the victim recipe's")
    batch_size: int = Field(256, ge=1, description="batch size of the forward passes (losses, relabelling)")
