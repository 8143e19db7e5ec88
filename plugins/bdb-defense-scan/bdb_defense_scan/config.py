"""SCAn settings (reference defaults: the paper and its reference implementation)."""

import math

from pydantic import Field

from bdcore import MethodConfig


class SCAnConfig(MethodConfig):
    """Two-component decomposition of penultimate representations."""

    threshold: float = Field(math.exp(2), gt=0, description="a class is flagged when the MAD anomaly index of its "
                                                            "statistic J exceeds this (the reference benchmark's "
                                                            "detection_pretrain/scan.py: e^2 = 7.39; this plugin used "
                                                            "e before, which flags more classes)")
    em_iters: int = Field(100, ge=1, description="maximum EM iterations, global model and per-class split")
    tol: float = Field(1e-5, gt=0, description="EM convergence tolerance on the covariance change (Frobenius)")
    batch_size: int = Field(256, ge=1, description="batch size of the forward passes")
