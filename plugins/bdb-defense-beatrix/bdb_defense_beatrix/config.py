"""Beatrix settings (reference defaults: the paper)."""

import math

from pydantic import Field

from bdcore import MethodConfig


class BeatrixConfig(MethodConfig):
    """Gram-matrix deviations from per-class clean statistics."""

    orders: int = Field(8, ge=1, description="Gram matrices of orders 1..orders (paper: up to 8)")
    layer: str = Field("", description="module whose output feature map is used; '' = the deepest module with a "
                                       "spatial (B, C, H, W) output, found by one forward pass")
    threshold: float = Field(math.e ** 2, gt=0, description="flag a sample whose deviation, as a MAD anomaly index "
                                                            "against the validation split's deviations, exceeds this "
                                                            "(paper: e^2)")
    batch_size: int = Field(128, ge=1, description="batch size of the forward passes")
