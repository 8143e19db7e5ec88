"""Adaptive-Blend settings (reference defaults: the paper's CIFAR-10 setting)."""

import math

from pydantic import Field, field_validator

from bdcore import MethodConfig


class AdapBlendConfig(MethodConfig):
    """x' = x + alpha * M * (t - x); M keeps a random subset of the trigger's pieces (training only)."""

    alpha_train: float = Field(0.15, gt=0, le=1, description="blend ratio of the trigger pieces in poisoned/cover training images")
    alpha_test: float = Field(0.2, gt=0, le=1, description="blend ratio of the full trigger at test time")
    pieces: int = Field(16, ge=1, description="number of trigger pieces (a perfect square: a g x g grid over the image)")
    mask_rate: float = Field(0.5, ge=0, lt=1, description="share of the pieces left out in each poisoned/cover training image")
    cover_ratio: float | None = Field(
        None, ge=0, le=1,
        description="share of the training set used as cover samples (trigger, true label); None: equal to the poisoning ratio",
    )
    trigger_image: str | None = Field(
        None, description="path of an image file to use as the trigger (PNG/JPEG); default: random pattern"
    )
    pattern_seed: int = Field(0, description="seed of the random pattern (ignored with trigger_image)")

    @field_validator("pieces")
    @classmethod
    def _square(cls, v: int) -> int:
        if math.isqrt(v) ** 2 != v:
            raise ValueError("pieces must be a perfect square (4, 9, 16, ...)")
        return v
