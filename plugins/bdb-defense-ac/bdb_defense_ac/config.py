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
    decision: Literal["smaller", "relative-size"] = Field(
        "smaller", description="which clusters are judged poisoned: 'smaller' = the smallest cluster of every class, "
                               "no size test (the reference's defense script, cluster_analysis 'smaller'); "
                               "'relative-size' = the smallest cluster only when it holds less than size_threshold "
                               "of its class (the paper; the reference's detection script)")
    size_threshold: float = Field(
        0.35, gt=0, le=0.5, description="decision 'relative-size' only: the smallest cluster is judged poisoned when "
                                        "it holds less than this share of its class (paper: 0.35)")
    batch_size: int = Field(256, ge=1, description="batch size of the forward passes")
