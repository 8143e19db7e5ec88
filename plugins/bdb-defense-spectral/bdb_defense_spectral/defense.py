"""Spectral Signatures (Tran, Li & Madry, NeurIPS 2018).

Within a class whose samples are partly poisoned, the mean difference between clean and poisoned
representations dominates the covariance, so the poisoned samples project strongly on its top
singular vector. Per (poisoned) label: centre the penultimate features, take the top right
singular vector v of the centred matrix, score every sample by (x - mean) . v squared, and remove
the top `removal_factor * eps` share of the class (Algorithm 1; the reference's default removes the
scores above the 85th percentile, i.e. 1.5 x 0.1).
"""

from __future__ import annotations

import math

import torch

from bdcore import Defense, DefenseInputs, DefenseOutput, class_features

from bdb_defense_spectral.config import SpectralConfig


def spectral_scores(feats: torch.Tensor) -> torch.Tensor:
    """Squared projection of each centred row of `feats` (n, d) on the top right singular vector."""
    x = feats.double() - feats.double().mean(0, keepdim=True)
    if x.shape[0] < 2:
        return torch.zeros(x.shape[0], dtype=torch.float64)
    _, _, vh = torch.linalg.svd(x, full_matrices=False)
    return (x @ vh[0]) ** 2


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
        for k, idx, feats in class_features(inputs.model, inputs.train, c.batch_size):
            s = spectral_scores(feats)
            scores[idx] = s
            flagged[idx[top_share(s, c.removal_factor * c.eps)]] = True
            top[str(k)] = round(float(s.max()), 4)
        return DefenseOutput(keep=~flagged, flagged=flagged, scores=scores.float(),
                             info={"flag_count": int(flagged.sum()), "max_score_per_class": top})
