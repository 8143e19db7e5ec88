"""NAB settings (paper defaults where the paper gives them; CATALOG.md)."""

from typing import Literal

from pydantic import Field

from bdcore import MethodConfig


class NABConfig(MethodConfig):
    """LGA detection, defensive trigger + stand-in relabelling, training, trigger at test time."""

    gamma: float = Field(0.5, ge=0, description="LGA loss floor of the detection stage (ABL's 0.5)")
    lga_augment: bool = Field(False, description="random crop/flip of the images during the LGA stage (the "
                                                 "reference trains it on the plain images)")
    isolation_epochs: int = Field(20, ge=1, description="epochs of LGA training before detection (ABL's 20)")
    lga_lr: float | None = Field(0.01, gt=0, description="SGD learning rate of the LGA stage (reference 0.01); "
                                                         "None: the victim recipe's")
    lga_batch_size: int | None = Field(64, ge=1, description="mini-batch of the LGA stage (reference 64); None: the "
                                                             "victim recipe's")
    lga_schedule: Literal["constant", "cosine"] = Field(
        "constant", description="learning-rate schedule of the LGA stage: constant (the reference decays it by only 9% "
        "over its 20 epochs) or cosine (to 0 over the stage)")
    isolation_ratio: float = Field(0.1, gt=0, lt=1, description="share of the training set detected as "
                                                                "suspicious: the lowest LGA losses (reference 0.1)")
    patch: int = Field(3, ge=1, description="side of the defensive trigger: a white square in the top-left corner "
                                            "(the attack's BadNets square sits bottom-right)")
    relabel_epochs: int = Field(100, ge=1, description="epochs of the stand-in labeller trained on the clean reserve "
                                                       "(replaces the paper's self-supervised labeller)")
    train_epochs: int | None = Field(None, ge=1, description="epochs of the final training on the stamped, relabelled "
                                                             "set; None: the victim recipe's")
    batch_size: int = Field(256, ge=1, description="batch size of the forward passes (losses, relabelling)")
