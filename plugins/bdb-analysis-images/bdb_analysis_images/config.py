"""Settings of the image-space tools (light: pydantic only)."""

from __future__ import annotations

from pydantic import Field

from bdcore import MethodConfig


class GradCAMConfig(MethodConfig):
    images: int = Field(6, ge=1, le=16, description="image pairs shown")


class VisConfig(MethodConfig):
    neurons: int = Field(8, ge=1, le=32, description="neurons visualised (largest trigger activation change first)")
    steps: int = Field(100, ge=1, le=2000, description="gradient-ascent steps")
    lr: float = Field(0.05, gt=0, description="Adam learning rate on the image logits")
    tv: float = Field(0.05, ge=0, description="weight of the total-variation penalty")


class ShapConfig(MethodConfig):
    images: int = Field(4, ge=1, le=12, description="images shown (clean and triggered)")
    background: int = Field(64, ge=2, le=1000, description="clean training images forming the expected-gradients background")
    nsamples: int = Field(100, ge=1, le=2000,
                          description="background/interpolation draws per explained image (shap's nsamples)")


class QualityConfig(MethodConfig):
    fid_weights: str | None = Field(
        None, description="local file with a state dict of torchvision's inception_v3 (ImageNet weights, "
                          "e.g. inception_v3_google-0cc3c7bd.pth); with it FID is computed, without it skipped")
