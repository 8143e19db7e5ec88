"""ABL settings (reference defaults: CATALOG.md and the paper)."""

from pydantic import Field

from bdcore import MethodConfig


class ABLConfig(MethodConfig):
    """LGA isolation, training on the rest, gradient-ascent unlearning of the isolated samples."""

    gamma: float = Field(0.5, ge=0, description="LGA loss floor: the loss sign(L - gamma) * L keeps the batch loss "
                                                "near gamma (paper: 0.5)")
    lga_augment: bool = Field(False, description="random crop/flip of the images during the LGA stage (the "
                                                 "reference trains it on the plain images)")
    isolation_epochs: int = Field(20, ge=1, description="epochs of LGA training before isolation (paper: 20)")
    isolation_ratio: float = Field(0.01, gt=0, lt=1, description="share of the training set isolated as poisoned: "
                                                                 "the lowest losses (paper: 0.01)")
    finetune_epochs: int = Field(60, ge=0, description="epochs of ordinary training on the non-isolated samples, "
                                                       "cosine schedule (paper: 60)")
    unlearn_epochs: int = Field(20, ge=0, description="epochs of gradient ascent on the isolated samples (paper: 20)")
    unlearn_lr: float = Field(5e-4, gt=0, description="learning rate of the unlearning stage, constant (paper: 5e-4)")
    unlearn_batch_size: int = Field(64, ge=1, description="mini-batch size of the unlearning stage (paper: 64)")
    lr: float | None = Field(None, gt=0, description="learning rate of the isolation (constant) and fine-tuning "
                                                     "(cosine) stages; None: the victim recipe's")
    batch_size: int = Field(256, ge=1, description="batch size of the forward passes that measure per-sample losses")
