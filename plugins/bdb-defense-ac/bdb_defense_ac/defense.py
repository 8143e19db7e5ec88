"""Activation Clustering (Chen et al., 2019).

Poisoned samples are classified as the target because of the trigger, not because of the features
of the target class, so in the target class's penultimate activations they form a cluster of their
own. Per (poisoned) label, the activations are reduced to `dims` components (PCA or FastICA) and
split by k-means. The decision (`decision`) judges the smallest cluster of each class poisoned:
in every class ('smaller', the reference's defense script) or only where it holds less than
`size_threshold` of its class ('relative-size', the paper's analysis). Those samples are removed and
the harness retrains.

Per-sample suspicion (for AUROC): a sample's closeness to its class's smallest cluster,
(d_rest - d_small) / (d_rest + d_small) in [-1, 1] with d the distances to the centroids in the
reduced space, weighted by the silhouette score of the class's clustering (how well the class
splits at all; clean classes split poorly).
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA, FastICA
from sklearn.metrics import silhouette_score

from bdcore import Defense, DefenseInputs, DefenseOutput, class_features

from bdb_defense_ac.config import ACConfig


def reduce_dims(feats: np.ndarray, dims: int, method: str, seed: int) -> np.ndarray:
    """`feats` (n, d) reduced to min(dims, n - 1, d) components by PCA or FastICA (centred first)."""
    k = max(1, min(dims, feats.shape[0] - 1, feats.shape[1]))
    x = feats - feats.mean(0, keepdims=True)
    if method == "ica":
        return FastICA(n_components=k, whiten="unit-variance", random_state=seed, max_iter=1000).fit_transform(x)
    return PCA(n_components=k, random_state=seed).fit_transform(x)


def cluster_class(z: np.ndarray, clusters: int, seed: int) -> tuple[np.ndarray, float, np.ndarray]:
    """k-means of one class: (cluster label per sample, silhouette score, suspicion margin per sample).

    The margin is (d_rest - d_small) / (d_rest + d_small): d_small is the distance to the smallest
    cluster's centroid, d_rest to the nearest other centroid; positive means closer to the smallest.
    """
    n = z.shape[0]
    if n <= clusters:
        return np.zeros(n, dtype=int), 0.0, np.full(n, -1.0)
    km = KMeans(n_clusters=clusters, n_init=10, random_state=seed).fit(z)
    lab = km.labels_
    if len(np.unique(lab)) < 2:
        return lab, 0.0, np.full(n, -1.0)
    small = int(np.argmin(np.bincount(lab, minlength=clusters)))
    d = np.linalg.norm(z[:, None, :] - km.cluster_centers_[None], axis=2)  # (n, k)
    d_small = d[:, small]
    d_rest = np.delete(d, small, axis=1).min(1)
    margin = (d_rest - d_small) / np.maximum(d_rest + d_small, 1e-12)
    return lab, float(silhouette_score(z, lab)), margin


def smallest_is_poisoned(sizes: np.ndarray, decision: str, size_threshold: float) -> bool:
    """Whether a class's smallest cluster (cluster sizes `sizes`) is judged poisoned.

    'smaller': always (a class that did not split, one non-empty cluster, has nothing to remove);
    'relative-size': when its share of the class is below `size_threshold`.
    """
    small = int(sizes.min())
    if small == 0:
        return False
    if decision == "smaller":
        return True
    return small / int(sizes.sum()) < size_threshold


class ActivationClustering(Defense):
    """Remove each class's small activation cluster ('smaller' or relative-size analysis)."""

    config: ACConfig

    def run(self, inputs: DefenseInputs) -> DefenseOutput:
        c = self.config
        n = len(inputs.train)
        scores = np.zeros(n)
        flagged = np.zeros(n, dtype=bool)
        per_class = {}
        for k, idx, feats in class_features(inputs.model, inputs.train, c.batch_size):
            idx = idx.numpy()
            z = reduce_dims(feats.numpy(), c.dims, c.reduce, self.ctx.seed)
            lab, sil, margin = cluster_class(z, c.clusters, self.ctx.seed)
            sizes = np.bincount(lab, minlength=c.clusters)
            small = int(np.argmin(sizes))
            rel = float(sizes[small] / len(idx))
            poisoned = smallest_is_poisoned(sizes, c.decision, c.size_threshold)
            if poisoned:
                flagged[idx[lab == small]] = True
            scores[idx] = max(sil, 0.0) * margin
            per_class[str(k)] = {"size": int(len(idx)), "smallest_share": round(rel, 4),
                                 "silhouette": round(sil, 4), "flagged": bool(poisoned)}
        return DefenseOutput(
            keep=torch.from_numpy(~flagged), flagged=torch.from_numpy(flagged),
            scores=torch.from_numpy(scores).float(),
            info={"classes": per_class, "flag_count": int(flagged.sum()),
                  "flagged_classes": [int(k) for k, v in per_class.items() if v["flagged"]]},
        )
