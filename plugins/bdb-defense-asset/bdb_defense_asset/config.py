"""ASSET settings (reference defaults: the paper's code and the reference benchmark)."""

from pydantic import Field

from bdcore import MethodConfig


class ASSETConfig(MethodConfig):
    """Active separation via offset: min on the clean base set, max on the poisoned set."""

    rounds: int = Field(1, ge=1, description="passes over the poisoned training set (reference: 1)")
    lr: float = Field(1e-4, gt=0, description="Adam learning rate of the offset model, both steps (reference: 1e-4)")
    batch_size: int = Field(128, ge=2, description="poisoned samples per offset step; each is paired with a batch "
                                                   "of the clean reserve (the base set)")
    disc_steps: int = Field(100, ge=1, description="training steps of the per-batch discriminator between poisoned-set "
                                                   "and base-set features (reference: 100)")
    disc_hidden: int = Field(128, ge=1, description="width of the discriminator's two hidden layers (reference: 128)")
    disc_lr: float = Field(1e-4, gt=0, description="Adam learning rate of the discriminator (reference: 1e-4)")
    outlier: float = Field(2.0, gt=0, description="the loss is maximised on the batch's samples whose discriminator "
                                                  "output has a MAD anomaly index above this (reference: outlyingness 2)")
