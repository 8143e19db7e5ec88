"""Refool settings (reference defaults: CATALOG.md and the paper's reference implementation)."""

from pydantic import Field, model_validator

from bdcore import MethodConfig


class RefoolConfig(MethodConfig):
    """x_adv = (alpha_t * x^g + (1 - alpha_t) * (x_R conv k)^g)^(1/g), k one of three reflection kernels."""

    clean_label: bool = Field(
        False, description="paper's original clean-label variant: poison only target-class samples, keep labels"
    )
    num_reflections: int = Field(
        200, ge=1, description="size of the reflection candidate set (the trigger family), drawn with the run's seed"
    )
    reflection_dir: str | None = Field(
        None, description="directory of PNG/JPEG reflection images; default: other training images (not of the target)"
    )
    alpha_t: float | None = Field(
        0.4, gt=0, lt=1, description="weight of the transmitted (clean) image; None: 1 - U(0.05, 0.45) per sample"
    )
    ghost_rate: float = Field(0.49, ge=0, le=1, description="probability of the ghost-effect reflection (type III)")
    in_focus_rate: float = Field(
        0.0, ge=0, le=1, description="probability of the in-focus reflection (type I); the rest are out of focus (II)"
    )
    sigma_min: float = Field(1.0, gt=0, description="lower bound of the random Gaussian blur sigma (pixels), type II")
    sigma_max: float = Field(5.0, gt=0, description="upper bound of the random Gaussian blur sigma (pixels), type II")
    ghost_offset_min: int = Field(3, ge=0, description="lower bound of the ghost shift per axis (pixels), type III")
    ghost_offset_max: int = Field(8, ge=0, description="upper bound of the ghost shift per axis (pixels), type III")
    ghost_alpha_min: float = Field(0.15, ge=0, le=1, description="ghost attenuation b = |s - U(min, max)|, s in {0, 1}")
    ghost_alpha_max: float = Field(0.5, ge=0, le=1, description="upper bound of U in the ghost attenuation")
    gamma: float = Field(2.2, gt=0, description="display gamma: layers are mixed in linear light (x^gamma)")

    @model_validator(mode="after")
    def _ranges(self) -> "RefoolConfig":
        if self.ghost_rate + self.in_focus_rate > 1:
            raise ValueError("ghost_rate + in_focus_rate must be at most 1")
        if self.sigma_min > self.sigma_max:
            raise ValueError("sigma_min must be <= sigma_max")
        if self.ghost_offset_min > self.ghost_offset_max:
            raise ValueError("ghost_offset_min must be <= ghost_offset_max")
        if self.ghost_alpha_min > self.ghost_alpha_max:
            raise ValueError("ghost_alpha_min must be <= ghost_alpha_max")
        return self
