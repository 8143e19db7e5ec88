"""Activation Clustering settings (reference defaults: CATALOG.md and the paper)."""

from typing import Literal

from pydantic import Field

from bdcore import MethodConfig


class ACConfig(MethodConfig):
    """Per-class 2-means clustering of reduced penultimate activations."""

    reduce: Literal["pca", "ica"] = Field(
        "pca", description="dimensionality reduction before clustering: 'pca' (the reference benchmark) or "
                           "'ica' (FastICA, the paper)")
    dims: int = Field(10, ge=1, description="number of components kept per class (paper: 10)")
    clusters: int = Field(2, ge=2, description="k-means clusters per class (paper: 2)")
    size_threshold: float = Field(
        0.35, gt=0, le=0.5, description="relative-size analysis: in each class the smallest cluster is judged "
                                        "poisoned when it holds less than this share of the class (paper: 0.35; "
                                        "0.5 = always remove the smallest cluster)")
    batch_size: int = Field(256, ge=1, description="batch size of the forward passes")
