"""Poison Ink settings (defaults: the reference benchmark's resource/poison_ink scripts where the shared trainer
allows them; the README's "Reference settings" table lists each with its source and every difference)."""

from typing import Literal

from pydantic import Field, field_validator

from bdcore import MethodConfig


class PoisonInkConfig(MethodConfig):
    """T = colour where the Sobel magnitude of the luma exceeds a threshold, white elsewhere; the container
    x' = clip(H(x, T)) is the hiding network's output; H and a reveal network R are trained so that R(x') = T,
    R(x) = white and x' stays close to x. The victim trains on each clean (augmented) batch followed by one batch
    of the poisoned training set (not augmented)."""

    color: list[int] = Field([80, 160, 80], description="trigger colour of the edges, 0-255 levels per channel "
                             "(single-channel data: the BT.601 luma of an RGB colour)")
    edge_threshold: float = Field(28.0, ge=0, description="edge where the Sobel magnitude (scikit-image's "
                                  "normalisation) of the 0-255 luma exceeds this")
    width: int = Field(64, ge=2, description="channels of the hiding U-Net's first level")
    depth: int = Field(4, ge=1, description="down-sampling levels of the hiding U-Net (capped at log2 of the image's "
                       "smaller side)")
    reveal_width: int = Field(128, ge=2, description="channels of the reveal network")
    stages: list[Literal["none", "crop", "flip"]] = Field(
        ["crop", "flip"], min_length=1, description="training stages, each `epochs` long with a fresh optimiser "
        "from the previous weights: the transformation (probability 1/2 per batch) the reveal network sees the "
        "containers through (crop: 7/8 of each side, resized back; flip: left-right; none)")
    epochs: int = Field(200, ge=1, description="epochs of each stage")
    batch_size: int = Field(32, ge=1, description="images per network training step")
    lr: float = Field(2e-4, gt=0, description="Adam learning rate (constant)")
    image_weight: float = Field(1.0, ge=0, description="weight of MSE(H output, image)")
    reveal_weight: float = Field(1.0, ge=0, description="weight of the reveal losses (the reference's beta)")
    edge_weight: float = Field(13.0, ge=0, description="weight of the reveal MSE on edge pixels (the MSE on the "
                               "other pixels has weight 1)")
    clean_weight: float = Field(100.0, ge=0, description="weight of MSE(R(clean image), white)")
    network_seed: int = Field(0, description="seed of the networks' init and data order (shared across runs)")

    @field_validator("color")
    @classmethod
    def _levels(cls, v: list[int]) -> list[int]:
        if not v or any(not 0 <= c <= 255 for c in v):
            raise ValueError("color needs 0-255 levels, one per channel (or three for RGB)")
        return v
