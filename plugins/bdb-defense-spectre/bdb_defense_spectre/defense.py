"""SPECTRE (Hayase, Kong, Somani & Oh, ICML 2021).

Per (poisoned) label: project the penultimate representations on their top `dims` principal
components; estimate the clean mean and covariance robustly, so that the poisoned minority does not
pull them (here scikit-learn's Minimum Covariance Determinant with a support of 1 - 1.5 eps of the
class); whiten with them, which amplifies the poisoned direction; and score each sample with the
quantum-entropy (QUE) score tau_i = z_i' Q z_i / tr(Q), Q = exp(alpha (S - I) / (||S||_2 - 1)),
S the covariance of the whitened data. The top `removal_factor * eps` of the class are flagged.
QUE scores are normalised by tr(Q), so they are comparable across classes (used for AUROC).

The number of components is chosen per class (the reference's rule, `dims` None): for each k among
1, 4, 9, ..., 64 the class is filtered as above; the samples kept at k whiten a 64-component PCA of
the class, and the k whose whitened data shows the largest QUE statistic tr(S Q) / tr(Q) (the most
excess variance left in one direction, i.e. the cleanest kept set) wins.
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


def que_statistic(s: torch.Tensor, alpha: float) -> float:
    """tr(S Q) / tr(Q), Q = exp(alpha (S - I) / (||S||_2 - 1)) (Q = I when ||S||_2 <= 1): the QUE statistic of a
    covariance S of whitened data, large when its excess variance sits in few directions."""
    s = s.double()
    k = s.shape[0]
    norm = float(torch.linalg.matrix_norm(s, ord=2))
    eye = torch.eye(k, dtype=s.dtype)
    q = eye if norm <= 1.0 + 1e-9 else torch.linalg.matrix_exp(alpha * (s - eye) / (norm - 1.0))
    return float(torch.trace(s @ q) / torch.trace(q))


def candidate_dims(max_dims: int) -> list[int]:
    """The squares of 8 values evenly spaced from 1 to sqrt(max_dims), rounded down (64: 1, 4, 9, ..., 64)."""
    return sorted({int(v ** 2 + 1e-9) for v in np.linspace(1.0, math.sqrt(max_dims), 8)})


def kept_statistic(reps: np.ndarray, kept: np.ndarray, alpha: float) -> float:
    """The QUE statistic of `reps` (n, D), whitened by the covariance of its kept rows (the reference's choice of
    k: the kept set that leaves the most concentrated excess variance in the whole class)."""
    cov = np.cov(reps[kept], rowvar=False)
    w, v = np.linalg.eigh(np.atleast_2d(cov))
    white = reps @ (v @ np.diag(1.0 / np.sqrt(np.maximum(w, 1e-12))) @ v.T)
    return que_statistic(torch.from_numpy(np.atleast_2d(np.cov(white, rowvar=False))), alpha)


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
        chosen = {}
        for k, idx, feats in class_features(inputs.model, inputs.train, c.batch_size):
            cap = min(len(idx) // 4, feats.shape[1])
            m = min(len(idx), math.ceil(share * len(idx)))
            if c.dims is not None:
                dims = min(c.dims, cap)
                if dims < 1:
                    continue
                tau, order = self._filter(feats.numpy(), dims, share, m)
            else:
                cands = [d for d in candidate_dims(c.max_dims) if d <= cap]
                if not cands:
                    continue
                reps = PCA(n_components=min(c.max_dims, cap), random_state=self.ctx.seed).fit_transform(feats.numpy())
                best = None
                for d in cands:
                    tau_d, order_d = self._filter(feats.numpy(), d, share, m)
                    kept = np.ones(len(idx), dtype=bool)
                    kept[order_d.numpy()] = False
                    stat = kept_statistic(reps, kept, c.alpha)
                    if best is None or stat > best[0]:
                        best = (stat, d, tau_d, order_d)
                _, dims, tau, order = best
            scores[idx] = tau
            flagged[idx[order]] = True
            top[str(k)] = round(float(tau[order].mean()), 4)
            chosen[str(k)] = dims
        return DefenseOutput(flagged=flagged, scores=scores.float(),
                             info={"flag_count": int(flagged.sum()), "mean_flagged_que_per_class": top,
                                   "dims_per_class": chosen})

    def _filter(self, feats: np.ndarray, dims: int, share: float, m: int) -> tuple[torch.Tensor, torch.Tensor]:
        """QUE scores of a class at `dims` components and the indices (into the class) of its m highest."""
        x = PCA(n_components=dims, random_state=self.ctx.seed).fit_transform(feats)
        z = torch.from_numpy(robust_whiten(x, max(0.5, 1.0 - share), self.ctx.seed))
        tau = que_scores(z, self.config.alpha)
        return tau, torch.argsort(tau, descending=True, stable=True)[:m]
