"""Spectral Signatures (Tran, Li & Madry, NeurIPS 2018).

Within a class whose samples are partly poisoned, the mean difference between clean and poisoned
representations dominates the covariance, so the poisoned samples project strongly on its top
singular vector. Per (poisoned) label: centre the penultimate features, take the top right
singular vector v of the centred matrix, score every sample by (x - mean) . v squared, and remove
the top `removal_factor * eps` share of the class (Algorithm 1; the reference's default removes the
scores above the 85th percentile, i.e. 1.5 x 0.1).

Settings give the reference benchmark's variant: the flattened last spatial feature map instead of
the penultimate features (`features` 'map'), scored by abs(v . x) without centring (`centred` false).
"""

from __future__ import annotations

import math

import torch

from bdcore import Defense, DefenseInputs, DefenseOutput, class_features, collect_features, last_feature_map

from bdb_defense_spectral.config import SpectralConfig


def spectral_scores(feats: torch.Tensor, centred: bool = True) -> torch.Tensor:
    """Per row of `feats` (n, d), its projection on the top right singular vector v of the centred matrix:
    squared after centring (the paper), or abs(v . x) of the uncentred row (`centred` false, the reference)."""
    raw = feats.double()
    x = raw - raw.mean(0, keepdim=True)
    if x.shape[0] < 2:
        return torch.zeros(x.shape[0], dtype=torch.float64)
    _, _, vh = torch.linalg.svd(x, full_matrices=False)
    return (x @ vh[0]) ** 2 if centred else (raw @ vh[0]).abs()


def map_class_features(model: torch.nn.Module, data, batch_size: int) -> list[tuple[int, torch.Tensor, torch.Tensor]]:
    """As `class_features`, with the flattened last spatial feature map (before pooling) as the representation."""
    _, module = last_feature_map(model, data.batch(torch.arange(min(2, len(data))))[0].float())
    feats = collect_features(model, module, data.iter_batches(batch_size)).flatten(1).double().cpu()
    labels = data.y.cpu()
    return [(int(k), idx, feats[idx]) for k in torch.unique(labels).tolist()
            for idx in [torch.nonzero(labels == k).flatten()]]


def top_share(scores: torch.Tensor, share: float) -> torch.Tensor:
    """Bool mask of the ceil(share * n) highest scores (ties broken by position)."""
    k = min(len(scores), math.ceil(share * len(scores) - 1e-9))
    mask = torch.zeros(len(scores), dtype=torch.bool)
    if k > 0:
        mask[torch.argsort(scores, descending=True, stable=True)[:k]] = True
    return mask


class SpectralSignatures(Defense):
    """Remove the top 1.5 x eps of each class by spectral score."""

    config: SpectralConfig

    def run(self, inputs: DefenseInputs) -> DefenseOutput:
        c = self.config
        n = len(inputs.train)
        scores = torch.zeros(n, dtype=torch.float64)
        flagged = torch.zeros(n, dtype=torch.bool)
        top = {}
        groups = (class_features if c.features == "penultimate" else map_class_features)(inputs.model, inputs.train,
                                                                                          c.batch_size)
        for k, idx, feats in groups:
            s = spectral_scores(feats, c.centred)
            scores[idx] = s
            flagged[idx[top_share(s, c.removal_factor * c.eps)]] = True
            top[str(k)] = round(float(s.max()), 4)
        return DefenseOutput(keep=~flagged, flagged=flagged, scores=scores.float(),
                             info={"flag_count": int(flagged.sum()), "max_score_per_class": top})
