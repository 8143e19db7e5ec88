"""SPECTRE (Hayase, Kong, Somani & Oh, ICML 2021).

Per (poisoned) label: project the penultimate representations on their top `dims` principal
components; estimate the clean mean and covariance robustly, so that the poisoned minority does not
pull them (here scikit-learn's Minimum Covariance Determinant with a support of 1 - 1.5 eps of the
class); whiten with them, which amplifies the poisoned direction; and score each sample with the
quantum-entropy (QUE) score tau_i = z_i' Q z_i / tr(Q), Q = exp(alpha (S - I) / (||S||_2 - 1)),
S the covariance of the whitened data. The top `removal_factor * eps` of the class are flagged.
QUE scores are normalised by tr(Q), so they are comparable across classes (used for AUROC).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from sklearn.covariance import MinCovDet
from sklearn.decomposition import PCA

from bdcore import Defense, DefenseInputs, DefenseOutput, class_features

from bdb_defense_spectre.config import SpectreConfig


def que_scores(z: torch.Tensor, alpha: float) -> torch.Tensor:
    """QUE score of each row of whitened data z (n, k): z_i' Q z_i / tr(Q), Q = exp(alpha (S - I) / (||S|| - 1)).

    S = z'z / n (second moment of the whitened data). When ||S||_2 <= 1, Q = I (plain squared norms / k).
    """
    z = z.double()
    s = z.T @ z / z.shape[0]
    k = s.shape[0]
    norm = float(torch.linalg.matrix_norm(s, ord=2))
    if norm <= 1.0 + 1e-9:  # no direction with excess variance: every direction weighs the same
        q = torch.eye(k, dtype=s.dtype)
    else:
        q = torch.linalg.matrix_exp(alpha * (s - torch.eye(k, dtype=s.dtype)) / (norm - 1.0))
    return ((z @ q) * z).sum(1) / torch.trace(q)


def robust_whiten(x: np.ndarray, support: float, seed: int) -> np.ndarray:
    """x (n, k) centred at a robust mean and whitened by a robust covariance (Minimum Covariance Determinant)."""
    mcd = MinCovDet(support_fraction=support, random_state=seed).fit(x)
    w, v = np.linalg.eigh(mcd.covariance_)
    inv_sqrt = v @ np.diag(1.0 / np.sqrt(np.maximum(w, 1e-12))) @ v.T
    return (x - mcd.location_) @ inv_sqrt


class Spectre(Defense):
    """Flag the top 1.5 x eps of each class by QUE score after robust whitening."""

    config: SpectreConfig

    def run(self, inputs: DefenseInputs) -> DefenseOutput:
        c = self.config
        n = len(inputs.train)
        scores = torch.zeros(n, dtype=torch.float64)
        flagged = torch.zeros(n, dtype=torch.bool)
        top = {}
        share = c.removal_factor * c.eps
        for k, idx, feats in class_features(inputs.model, inputs.train, c.batch_size):
            dims = min(c.dims, len(idx) // 4, feats.shape[1])
            if dims < 1:
                continue
            x = PCA(n_components=dims, random_state=self.ctx.seed).fit_transform(feats.numpy())
            z = torch.from_numpy(robust_whiten(x, max(0.5, 1.0 - share), self.ctx.seed))
            tau = que_scores(z, c.alpha)
            scores[idx] = tau
            m = min(len(idx), math.ceil(share * len(idx)))
            order = torch.argsort(tau, descending=True, stable=True)[:m]
            flagged[idx[order]] = True
            top[str(k)] = round(float(tau[order].mean()), 4)
        return DefenseOutput(flagged=flagged, scores=scores.float(),
                             info={"flag_count": int(flagged.sum()), "mean_flagged_que_per_class": top})
