"""Spectral Signatures settings (reference defaults: CATALOG.md and the paper)."""

from pydantic import Field

from bdcore import MethodConfig


class SpectralConfig(MethodConfig):
    """Top-singular-vector outlier scores per class."""

    eps: float = Field(0.1, gt=0, lt=1, description="assumed share of poisoned samples in a class (an assumption of "
                                                    "the defender, never read from the run; reference: 0.1)")
    removal_factor: float = Field(1.5, gt=0, description="remove the top removal_factor * eps of each class by score "
                                                         "(paper: 1.5)")
    batch_size: int = Field(256, ge=1, description="batch size of the forward passes")
