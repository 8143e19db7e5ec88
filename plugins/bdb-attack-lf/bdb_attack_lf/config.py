"""LF settings (reference defaults: CATALOG.md; the UAP settings LF builds on where the paper gives none)."""

from typing import Literal

from pydantic import Field, field_validator

from bdcore import MethodConfig


class LFConfig(MethodConfig):
    """v = universal perturbation towards the target (DeepFool steps, each followed by a Gaussian low-pass
    filter and the projection on the norm ball); x' = clip(x + v)."""

    max_iter_uni: int = Field(50, ge=1, description="passes of the universal-perturbation loop over the images")
    overshoot: float = Field(0.02, ge=0, description="DeepFool overshoot")
    max_iter_df: int = Field(10, ge=1, description="DeepFool iterations per image")
    fooling_rate: float = Field(0.8, gt=0, le=1, description="stop once this share of the images is classified as "
                                "the target with the perturbation (UAP's 1 - delta, delta 0.2)")
    norm: Literal["inf", "2"] = Field("inf", description="norm of the ball the perturbation is projected on")
    xi: float = Field(10.0, gt=0, description="radius of that ball, on the 0-255 scale (UAP's 10 for L-inf)")
    kernel_size: int = Field(3, ge=1, description="window of the Gaussian low-pass filter (odd)")
    sigma: float = Field(1.0, gt=0, description="standard deviation of the Gaussian low-pass filter, in pixels")
    samples: int | None = Field(None, ge=1, description="training images the perturbation is computed on "
                                "(drawn by the attack seed; None: all)")
    batch_size: int = Field(1, ge=1, description="images per universal update (1: the paper's sequential loop; "
                            "more: the mean DeepFool step of the batch's not-yet-fooled images)")
    surrogate_model: str | None = Field(None, description="surrogate architecture (default: the victim's model)")
    surrogate_epochs: int = Field(100, ge=1, description="surrogate training epochs (default: the reference victim recipe)")
    surrogate_lr: float = Field(0.01, gt=0, description="surrogate peak learning rate (SGD, cosine, wd 5e-4, batch 128)")
    surrogate_seed: int = Field(0, description="seed of the surrogate's init and data order (shared across runs)")

    @field_validator("kernel_size")
    @classmethod
    def _odd(cls, v: int) -> int:
        if v % 2 == 0:
            raise ValueError(f"kernel_size must be odd (the filter is centred on each pixel), got {v}")
        return v
