"""Poison Ink settings (reference defaults: the paper where it gives them; the rest stated in the README)."""

from pydantic import Field, field_validator

from bdcore import MethodConfig


class PoisonInkConfig(MethodConfig):
    """T = colour * Canny(x); x' = clip(x + I(x, T)); I and an extractor E trained so that E(x') = T and E(x) = 0
    while x' stays close to x: loss = w_i ||x' - x||^2 + w_e (||E(x') - T||^2 + ||E(x)||^2)."""

    color: list[float] = Field([0.0, 1.0, 0.0], description="trigger colour of the edges, per channel in [0, 1] "
                               "(single-channel data: its BT.601 luma; 3 values for RGB)")
    sigma: float = Field(1.0, gt=0, description="Canny: standard deviation of the Gaussian smoothing (pixels)")
    low: float = Field(0.1, ge=0, le=1, description="Canny: weak-edge threshold, share of the image's largest "
                       "gradient magnitude")
    high: float = Field(0.2, ge=0, le=1, description="Canny: strong-edge threshold, share of the largest magnitude")
    epochs: int = Field(20, ge=1, description="injection/extraction training epochs over the training set")
    batch_size: int = Field(16, ge=1, description="images per training step")
    lr: float = Field(2e-4, gt=0, description="Adam learning rate")
    image_weight: float = Field(1.0, ge=0, description="weight of the container's L2 distance to the image")
    extract_weight: float = Field(1.0, ge=0, description="weight of the extraction losses (trigger from containers, "
                                  "blank from clean images)")
    width: int = Field(32, ge=4, description="channels of the networks' first level")
    network_seed: int = Field(0, description="seed of the networks' init and data order (shared across runs)")

    @field_validator("color")
    @classmethod
    def _unit(cls, v: list[float]) -> list[float]:
        if not v or any(not 0.0 <= c <= 1.0 for c in v):
            raise ValueError("color needs values in [0, 1], one per channel (or three for RGB)")
        return v
