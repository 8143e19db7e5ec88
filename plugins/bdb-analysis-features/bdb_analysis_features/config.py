"""Settings of the feature tools (light: pydantic only)."""

from __future__ import annotations

from pydantic import Field

from bdcore import MethodConfig


class TSNEConfig(MethodConfig):
    perplexity: float = Field(30.0, gt=1, description="t-SNE perplexity (capped at (n - 1) / 3)")
    pca: int = Field(50, ge=2, description="reduce features to this many PCA components first")
    neighbours: int = Field(10, ge=1, description="k of the k-NN check of how well poisoned samples separate")


class UMAPConfig(MethodConfig):
    n_neighbors: int = Field(15, ge=2, description="UMAP's n_neighbors")
    min_dist: float = Field(0.1, ge=0, description="UMAP's min_dist")
    pca: int = Field(50, ge=2, description="reduce features to this many PCA components first")
    neighbours: int = Field(10, ge=1, description="k of the k-NN check of how well poisoned samples separate")


class TopConfig(MethodConfig):
    k: int = Field(16, ge=1, le=100, description="images per neuron")
    neuron: int | None = Field(None, ge=0, description="neuron (channel) to show; default: the most trigger-sensitive")
    neurons: int = Field(8, ge=1, le=64, description="neurons shown by activation-distribution")


class MapsConfig(MethodConfig):
    channels: int = Field(12, ge=1, le=64, description="channels shown (those the trigger changes most)")
