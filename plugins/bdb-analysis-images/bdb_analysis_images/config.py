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
