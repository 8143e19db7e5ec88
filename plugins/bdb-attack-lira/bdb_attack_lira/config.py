"""LIRA settings (reference defaults: CATALOG.md, the paper's CIFAR-10 setting)."""

from typing import Literal

from pydantic import Field

from bdcore import MethodConfig


class LiraConfig(MethodConfig):
    """Autoencoder trigger generator T: x' = clip(x + eps * T(x)); joint stage, then classifier fine-tuning."""

    eps: float = Field(0.01, gt=0, le=1, description="trigger amplitude: x' = clip(x + eps * s * T(x), 0, 1), T in [-1, 1], "
                       "s by eps_space")
    eps_space: Literal["pixel", "normalised"] = Field(
        "pixel", description="where eps applies: 'pixel' (s = 1: eps of the [0, 1] image; bdb's default, a deliberate "
        "deviation: see the README) or 'normalised' (the reference: added to the normalised image, so s is the "
        "dataset's per-channel std, about 0.0025 per pixel on CIFAR-10, 0.005 on MNIST)"
    )
    alpha: float = Field(0.5, ge=0, le=1, description="classifier loss = alpha * clean CE + (1 - alpha) * backdoor CE")
    lr_generator: float = Field(1e-4, gt=0, description="Adam learning rate of the trigger generator T")
    joint_fraction: float = Field(
        0.5, gt=0, le=1, description="share of the victim's epochs in the joint stage (T trained); the rest fine-tunes "
        "the classifier with T frozen"
    )
    channels: int = Field(16, ge=1, description="channels of the autoencoder's first level (doubled per level)")
    levels: int | None = Field(
        None, ge=1, le=5, description="stride-2 levels of the autoencoder; default: 4 (the reference MNIST/CIFAR "
        "autoencoder), lowered until the image side is divisible by 2**levels"
    )
