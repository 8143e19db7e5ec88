"""Blended settings (reference defaults: CATALOG.md)."""

from pydantic import Field

from bdcore import MethodConfig


class BlendedConfig(MethodConfig):
    """x' = (1 - alpha) * x + alpha * t for a trigger image t."""

    alpha_train: float = Field(0.2, gt=0, le=1, description="blend ratio of the trigger in poisoned training images")
    alpha_test: float = Field(0.2, gt=0, le=1, description="blend ratio of the trigger at test time")
    trigger_image: str | None = Field(
        None, description="path of an image file to use as the trigger (PNG/JPEG); default: random pattern"
    )
    pattern_seed: int = Field(0, description="seed of the random pattern (ignored with trigger_image)")
