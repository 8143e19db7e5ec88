"""CLP settings (reference defaults: CATALOG.md)."""

from pydantic import Field

from bdcore import MethodConfig


class CLPConfig(MethodConfig):
    """Prune channels with UCLC > mean + u * std of their layer."""

    u: float = Field(3.0, description="outlier threshold in standard deviations above the layer's mean UCLC")
