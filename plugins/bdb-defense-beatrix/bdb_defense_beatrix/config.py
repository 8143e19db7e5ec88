"""Beatrix settings (reference defaults: BackdoorBench's detection script, the paper's Gram features)."""

import math
from typing import Literal

from pydantic import Field

from bdcore import MethodConfig


class BeatrixConfig(MethodConfig):
    """Gram-matrix deviations from per-class clean statistics."""

    orders: int = Field(8, ge=1, description="Gram matrices of orders 1..orders (paper and reference: up to 8)")
    layer: str = Field("", description="module whose output feature map is used; '' = the deepest module with a "
                                       "spatial (B, C, H, W) output, found by one forward pass")
    rule: Literal["reference", "anomaly"] = Field(
        "reference", description="which samples are flagged: 'reference' = per class, a deviation (the excess beyond "
                                 "median +- band x MAD of the class's clean Gram features) above the `percentile` of "
                                 "the clean images' own deviations, each measured `folds`-fold against statistics "
                                 "it took no part in (the reference); 'anomaly' = the mean MAD-normalised distance as "
                                 "a one-sided MAD anomaly index against the validation split's, pooled over classes, "
                                 "above `threshold` (this plugin until issue 27)")
    band: float = Field(10.0, gt=0, description="rule 'reference': a Gram entry deviates only beyond median +- band x "
                                                "MAD of the class's clean values (reference: 10)")
    percentile: float = Field(95.0, gt=0, lt=100, description="rule 'reference': the per-class threshold is this "
                                                              "percentile of the held-out clean deviations "
                                                              "(reference: 95)")
    folds: int = Field(5, ge=2, description="rule 'reference': folds over a class's clean images for its threshold "
                                            "(reference: 5)")
    group: Literal["prediction", "label"] = Field(
        "prediction", description="which class's clean statistics a sample meets, and how the clean images are "
                                  "grouped: the model's predicted class (the reference) or the given label")
    gram: Literal["reference", "paper"] = Field(
        "reference", description="Gram matrix of order p: 'reference' = the p-th root of F F' (BackdoorBench, which "
                                 "drops the paper's power, so its orders are roots of one matrix); 'paper' = "
                                 "(F^p)(F^p)' / HW, then its p-th root (the paper and its authors' code)")
    threshold: float = Field(math.e ** 2, gt=0, description="MAD anomaly-index threshold: of the class-level KMMD "
                                                            "test (rule 'reference', logged in info) or of a sample's "
                                                            "deviation against the validation split's (rule 'anomaly') "
                                                            "(paper: e^2)")
    batch_size: int = Field(128, ge=1, description="batch size of the forward passes")
