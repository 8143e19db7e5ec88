"""Adaptive-Patch settings (reference defaults: the paper's CIFAR-10 setting)."""

from pydantic import Field, field_validator, model_validator

from bdcore import MethodConfig

MAX_PATCHES = 8
"""Fixed patch locations: the four corners, then the four edge midpoints."""


class AdapPatchConfig(MethodConfig):
    """x' = x + sum_j a_j * m_j * (t_j - x) over the patches j a sample carries (patches do not overlap)."""

    train_alphas: list[float] = Field(
        [0.5, 0.2, 0.5, 0.3],
        description="opacity of each patch trigger in poisoned/cover training images (one entry per patch, "
                    "placed at top-left, top-right, bottom-left, bottom-right, then edge midpoints)",
    )
    test_alpha: float = Field(1.0, gt=0, le=1, description="opacity of the patches at test time")
    test_patches: list[int] | None = Field(
        None, description="indices of the patches stamped at test time; None: all of them"
    )
    patches_per_sample: int = Field(1, ge=1, description="how many of the patches each poisoned/cover training image carries")
    patch_size: int = Field(5, ge=1, le=16, description="side of each patch on the 32x32 reference image (scaled to the data's size)")
    cover_ratio: float | None = Field(
        None, ge=0, le=1,
        description="share of the training set used as cover samples (triggers, true label); None: equal to the poisoning ratio",
    )
    pattern_seed: int = Field(0, description="seed of the procedural patch patterns")

    @field_validator("train_alphas")
    @classmethod
    def _alphas(cls, v: list[float]) -> list[float]:
        if not 1 <= len(v) <= MAX_PATCHES:
            raise ValueError(f"give 1 to {MAX_PATCHES} patch opacities")
        if any(not 0 < a <= 1 for a in v):
            raise ValueError("opacities must be in (0, 1]")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> "AdapPatchConfig":
        k = len(self.train_alphas)
        if self.patches_per_sample > k:
            raise ValueError("patches_per_sample exceeds the number of patches")
        if self.test_patches is not None:
            if not self.test_patches or any(not 0 <= j < k for j in self.test_patches):
                raise ValueError(f"test_patches must list indices in 0..{k - 1}")
        return self
