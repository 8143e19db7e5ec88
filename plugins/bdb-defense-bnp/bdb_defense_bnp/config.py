"""BNP settings (reference defaults: CATALOG.md and the paper)."""

from typing import Literal

from pydantic import Field

from bdcore import MethodConfig


class BNPConfig(MethodConfig):
    """KL divergence of clean pre-activation statistics from the BN running statistics, per neuron."""

    u: float = Field(3.0, ge=0, description="prune neurons whose KL divergence exceeds mean + u * std of their layer")
    layers: Literal["all", "last"] = Field(
        "all", description="BN layers inspected: 'all' (paper) or only the 'last' (deepest) BN layer, a miniature "
                           "variant for small networks whose early layers hold few, oddly distributed neurons")
    batch_size: int = Field(256, ge=1, description="batch size for the forward passes over the clean reserve")
