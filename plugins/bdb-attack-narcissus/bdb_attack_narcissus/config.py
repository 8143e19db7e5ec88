"""Narcissus settings (reference defaults: the paper's CIFAR-10 setting, CATALOG.md)."""

from pydantic import Field

from bdcore import MethodConfig


class NarcissusConfig(MethodConfig):
    """delta = argmin_{|delta|_inf <= eps} sum over target-class x of CE(f(x + delta), target), f a clean surrogate."""

    eps: float = Field(16.0, gt=0, le=255, description="L-inf bound of the trigger (of 255)")
    rounds: int = Field(1000, ge=1, description="trigger-synthesis epochs over the target-class images")
    lr: float = Field(0.01, gt=0, description="RAdam learning rate of the trigger synthesis")
    batch_size: int = Field(350, ge=1, description="target-class images per synthesis step")
    augment: bool = Field(True, description="random crop (+ flip where allowed) of the images during synthesis")
    test_magnification: float = Field(3.0, gt=0, description="the trigger is multiplied by this at test time "
                                      "(the paper's x3)")
    surrogate_model: str | None = Field(None, description="surrogate architecture (default: the victim's model)")
    surrogate_epochs: int = Field(100, ge=1, description="surrogate training epochs (default: the reference victim recipe)")
    surrogate_lr: float = Field(0.01, gt=0, description="surrogate peak learning rate (SGD, cosine, wd 5e-4, batch 128)")
    surrogate_seed: int = Field(0, description="seed of the surrogate's init and data order (shared across runs)")
