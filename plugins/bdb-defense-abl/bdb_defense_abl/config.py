"""ABL settings (reference defaults: CATALOG.md, the paper, and the reference's LGA stage)."""

from pydantic import Field

from bdcore import LGASettings


class ABLConfig(LGASettings):
    """LGA isolation, training on the rest, gradient-ascent unlearning of the isolated samples.

    The LGA stage's settings (gamma 0.5, 20 epochs, 1% isolated, lr 0.01 on plain images) come from
    `bdcore.LGASettings`; its mini-batch and weight decay here are the reference's 256 and 1e-4."""

    lga_batch_size: int | None = Field(256, ge=1, description="mini-batch of the LGA stage (the reference's 256); "
                                                              "None: the victim recipe's")
    lga_weight_decay: float | None = Field(1e-4, ge=0, description="SGD weight decay of the LGA stage (the "
                                                                 "reference's 1e-4); None: the victim recipe's")
    lga_nesterov: bool = Field(True, description="Nesterov momentum in the LGA stage (the reference's)")
    finetune_epochs: int = Field(60, ge=0, description="epochs of ordinary training on the non-isolated samples, "
                                                       "cosine schedule (paper: 60)")
    unlearn_epochs: int = Field(20, ge=0, description="epochs of gradient ascent on the isolated samples (paper: 20)")
    unlearn_lr: float = Field(5e-4, gt=0, description="learning rate of the unlearning stage, constant (paper: 5e-4)")
    unlearn_batch_size: int = Field(64, ge=1, description="mini-batch size of the unlearning stage (paper: 64)")
    unlearn_augment: bool = Field(True, description="random crop/flip of the isolated images during unlearning (the "
                                                    "reference's training transform)")
    lr: float | None = Field(None, gt=0, description="learning rate of the fine-tuning stage (cosine); None: the "
                                                     "victim recipe's")
    batch_size: int = Field(256, ge=1, description="batch size of the forward passes that measure per-sample losses")
