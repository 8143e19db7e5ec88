"""SPECTRE settings (reference defaults: the paper)."""

from pydantic import Field

from bdcore import MethodConfig


class SpectreConfig(MethodConfig):
    """Robust whitening and quantum-entropy outlier scores per class."""

    eps: float = Field(0.1, gt=0, lt=0.5, description="assumed share of poisoned samples in a class (an assumption of "
                                                      "the defender, never read from the run)")
    removal_factor: float = Field(1.5, gt=0, description="flag the top removal_factor * eps of each class by QUE score "
                                                         "(paper: 1.5)")
    dims: int | None = Field(None, ge=1, description="principal components kept per class before robust estimation; "
                                                     "None: chosen per class among 1, 4, 9, ..., 64 by the QUE "
                                                     "statistic (the reference's rcov_auto_quantum_filter)")
    max_dims: int = Field(64, ge=1, description="dims None: the candidates are the squares of 8 values evenly from 1 "
                                                "to sqrt(max_dims), judged on a max_dims-component PCA (reference: "
                                                "64)")
    alpha: float = Field(4.0, gt=0, description="QUE exponent alpha (paper: 4)")
    batch_size: int = Field(256, ge=1, description="batch size of the forward passes")
