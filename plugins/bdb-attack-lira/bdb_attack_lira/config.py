"""LIRA settings (reference defaults: CATALOG.md, the paper's CIFAR-10 setting)."""

from pydantic import Field

from bdcore import MethodConfig


class LiraConfig(MethodConfig):
    """Autoencoder trigger generator T: x' = clip(x + eps * T(x)); joint stage, then classifier fine-tuning."""

    eps: float = Field(0.01, gt=0, le=1, description="trigger amplitude: x' = clip(x + eps * T(x), 0, 1), T in [-1, 1]")
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
