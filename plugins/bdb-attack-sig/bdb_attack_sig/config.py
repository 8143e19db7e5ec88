"""SIG settings (reference defaults: CATALOG.md)."""

from pydantic import Field

from bdcore import MethodConfig


class SIGConfig(MethodConfig):
    """x' = clip(x + delta * sin(2 pi j f / W)) on every row and channel, j the column, W the width."""

    delta: float = Field(40.0, gt=0, le=255, description="amplitude of the sinusoid in poisoned training images (of 255)")
    delta_test: float | None = Field(
        None, gt=0, le=255, description="amplitude at test time (of 255); default: the same as delta"
    )
    frequency: float = Field(6.0, gt=0, description="number of sine periods across the image width (f)")
