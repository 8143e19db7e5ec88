"""FT-SAM settings (reference defaults: the paper's CIFAR-10 setting, CATALOG.md)."""

from pydantic import Field

from bdcore import MethodConfig


class FTSAMConfig(MethodConfig):
    """Sharpness-aware fine-tuning on the clean reserve (SGD, cosine schedule)."""

    epochs: int = Field(100, ge=1, description="fine-tuning epochs over the clean reserve (paper 100 on CIFAR-10)")
    lr: float = Field(0.01, gt=0, description="peak learning rate of SGD (cosine annealed)")
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum")
    batch_size: int = Field(256, ge=1, description="mini-batch size")
    weight_decay: float = Field(5e-4, ge=0, description="weight decay")
    rho: float = Field(2.0, ge=0, description="perturbation radius rho (paper: 2 on CIFAR-10, 8 on Tiny-ImageNet/GTSRB)")
    adaptive: bool = Field(True, description="adaptive perturbation, budget ||T_w^-1 e|| <= rho with T_w = diag(|w| + eta) "
                                            "(the paper's equations 1-4); false = plain SAM, ||e|| <= rho")
    eta: float = Field(0.0, ge=0, description="offset of T_w (the paper's T_w = diag(|w|) has none; ASAM uses 0.01)")
    label_smoothing: float = Field(0.1, ge=0, lt=1, description="label smoothing: 1 - s on the label, s / (C - 1) "
                                                                "on every other class")
    augment: bool = Field(True, description="random crop/flip as in victim training")
