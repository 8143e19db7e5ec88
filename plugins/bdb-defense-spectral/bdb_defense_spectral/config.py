"""Spectral Signatures settings (reference defaults: CATALOG.md and the paper)."""

from typing import Literal

from pydantic import Field

from bdcore import MethodConfig


class SpectralConfig(MethodConfig):
    """Top-singular-vector outlier scores per class."""

    eps: float = Field(0.1, gt=0, lt=1, description="assumed share of poisoned samples in a class (an assumption of "
                                                    "the defender, never read from the run; reference: 0.1)")
    removal_factor: float = Field(1.5, gt=0, description="remove the top removal_factor * eps of each class by score "
                                                         "(paper: 1.5)")
    features: Literal["penultimate", "map"] = Field(
        "penultimate", description="representation scored: 'penultimate' = the input of the last Linear layer (the "
                                   "paper) or 'map' = the flattened last spatial feature map before pooling (the "
                                   "reference's layer4 of PreAct-ResNet18)")
    centred: bool = Field(True, description="score (v . (x - mean))^2, the paper's, or, when false, abs(v . x) of the "
                                            "uncentred features (the reference); v is the top right singular vector "
                                            "of the centred class matrix either way")
    batch_size: int = Field(256, ge=1, description="batch size of the forward passes")
