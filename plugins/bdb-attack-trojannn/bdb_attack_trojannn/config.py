"""TrojanNN settings (reference defaults: CATALOG.md)."""

from typing import Literal

from pydantic import Field

from bdcore import MethodConfig


class TrojanNNConfig(MethodConfig):
    """Pattern p inside mask m maximising selected neurons: min sum_k (f_k(m p) - value)^2; x' = (1 - m) x + m p."""

    patch_size: int = Field(8, ge=1, le=32, description="side of the square mask on the 32x32 reference image "
                            "(8: 6% of the image, the paper's ~7% square)")
    corner: Literal["bottom-right", "bottom-left", "top-right", "top-left"] = Field(
        "bottom-right", description="where the mask sits (flush with the image border)")
    neurons: int = Field(2, ge=1, description="penultimate-layer neurons to drive: those with the largest weight "
                         "into the target logit")
    target_value: float = Field(100.0, description="value the selected neurons are driven to")
    iterations: int = Field(1000, ge=1, description="gradient steps of the pattern optimisation")
    lr: float = Field(0.1, gt=0, description="Adam learning rate of the pattern optimisation")
    surrogate_model: str | None = Field(None, description="surrogate architecture (default: the victim's model)")
    surrogate_epochs: int = Field(100, ge=1, description="surrogate training epochs (default: the reference victim recipe)")
    surrogate_lr: float = Field(0.01, gt=0, description="surrogate peak learning rate (SGD, cosine, wd 5e-4, batch 128)")
    surrogate_seed: int = Field(0, description="seed of the surrogate's init and data order (shared across runs)")
