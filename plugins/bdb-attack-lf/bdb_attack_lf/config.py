"""LF settings (reference defaults: BackdoorBench's `resource/lowFrequency` generator; README "Reference settings")."""

from typing import Literal

from pydantic import Field

from bdcore import MethodConfig


class LFConfig(MethodConfig):
    """v = universal perturbation towards the target: targeted DeepFool steps on a clean surrogate, each one
    Gaussian-smoothed, added, the sum smoothed again and min-max rescaled to [0, scale]; x' = clip(x + v)."""

    samples: int | None = Field(100, ge=1, description="training images the perturbation is computed on "
                                "(drawn by the attack seed; None: all)")
    max_iter_uni: int = Field(50, ge=1, description="passes of the universal-perturbation loop over the images")
    max_iter_df: int = Field(200, ge=2, description="DeepFool iterations per image; a step that needed "
                             "max_iter_df - 1 or more is taken as not converged and dropped")
    overshoot: float = Field(0.02, ge=0, description="DeepFool overshoot")
    fooling_rate: float = Field(0.2, gt=0, le=1, description="stop once adding v changes the surrogate's "
                                "prediction of this share of the rate images (1 - delta, delta 0.8)")
    rate_per_class: int = Field(10, ge=1, description="rate images per class: training images outside the "
                                "searched ones, drawn by the attack seed")
    plateau: int = Field(5, ge=0, description="also stop once the last `plateau` fooling rates lie within "
                         "plateau_tol of each other (0: never)")
    plateau_tol: float = Field(0.01, ge=0, description="see plateau (the rates' max - min must be below it)")
    sigma: float = Field(6.0, gt=0, description="standard deviation of the Gaussian smoothing filter, in pixels")
    kernel_size: int | None = Field(None, ge=1, description="taps of the (separable) Gaussian window; None: "
                                    "round(5 sigma), the reference's rule (30 for sigma 6)")
    padding: Literal["zeros", "replicate"] = Field("zeros", description="how the filter sees beyond the border "
                                                   "(zeros: the reference; replicate: DC gain 1 everywhere)")
    scale: float | None = Field(0.2, gt=0, le=1, description="v is min-max rescaled to [0, scale] after every "
                                "update (0.2: 0-51 grey levels); None: projected on the (norm, xi) ball instead")
    norm: Literal["inf", "2"] = Field("inf", description="ball v is projected on when scale is None")
    xi: float = Field(10.0, gt=0, description="radius of that ball, on the 0-255 scale")
    whole_levels: bool = Field(True, description="the trigger kept as whole grey levels, floor(255 v), as the "
                               "reference's uint8 pattern files")
    search_input: Literal["normalised", "raw"] = Field("normalised", description="what the surrogate sees during "
                                                       "the search: normalised images as in its training (bdb), or "
                                                       "the raw [0, 1] images the reference feeds it")
    surrogate_model: str | None = Field(None, description="surrogate architecture (default: the victim's model)")
    surrogate_epochs: int = Field(100, ge=1, description="surrogate training epochs (default: the reference victim recipe)")
    surrogate_lr: float = Field(0.01, gt=0, description="surrogate peak learning rate (SGD, cosine, wd 5e-4, batch 128)")
    surrogate_seed: int = Field(0, description="seed of the surrogate's init and data order (shared across runs)")
