"""Settings of the weight and loss-surface tools (light: pydantic only)."""

from __future__ import annotations

from pydantic import Field

from bdcore import MethodConfig


class LipschitzConfig(MethodConfig):
    u: float = Field(3.0, gt=0, description="a channel is an outlier above mean + u * std of its layer (CLP's u)")


class LandscapeConfig(MethodConfig):
    resolution: int = Field(11, ge=3, le=51, description="grid points per direction")
    span: float = Field(1.0, gt=0, description="the grid covers [-span, span] along each direction")


class HessianConfig(MethodConfig):
    iterations: int = Field(30, ge=2, le=200, description="Lanczos steps (Hessian-vector products)")
    sigma: float = Field(0.0, ge=0, description="Gaussian width of the density; 0: 1% of the spectrum's range")
