"""The benchmark's metrics, exactly as CATALOG.md defines them. Pure numpy, no torch."""

from __future__ import annotations

from typing import Mapping

import numpy as np


def accuracy(pred: np.ndarray, truth: np.ndarray) -> float:
    """Share of predictions equal to the truth (0.0 for an empty set)."""
    pred, truth = np.asarray(pred), np.asarray(truth)
    return float((pred == truth).mean()) if pred.size else 0.0


def broken_victim(cacc: float | None, num_classes: int) -> bool:
    """A model that did not learn its task: clean accuracy under min(0.5, 3 / C), three times chance.

    Its ASR, RA and a defense's DER on it mean nothing (a "defense" that retrains it wins by learning the
    task at last), so results, leaderboards and the report flag such runs and keep them out of rankings.
    Digits trained 2 epochs at lr 0.01 ends at 10-26%: flagged (C = 10, bar 30%); a working miniature
    victim sits at 94-99%.
    """
    if cacc is None or num_classes < 2:
        return False
    return cacc < min(0.5, 3.0 / num_classes)


def der(before: Mapping[str, float], after: Mapping[str, float]) -> float:
    """Defense effectiveness rating: (max(0, dASR) - max(0, dACC) + 1) / 2, drops before -> after."""
    return (max(0.0, before["asr"] - after["asr"]) - max(0.0, before["cacc"] - after["cacc"]) + 1) / 2


def rir(before: Mapping[str, float], after: Mapping[str, float]) -> float:
    """Robustness improvement rating: (max(0, RA gain) - max(0, accuracy drop) + 1) / 2."""
    return (max(0.0, after["ra"] - before["ra"]) - max(0.0, before["cacc"] - after["cacc"]) + 1) / 2


def auroc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney statistic, ties count half); nan if one class is empty."""
    scores = np.asarray(scores, dtype=np.float64)
    positive = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=np.float64)
    sorted_scores = scores[order]
    # average ranks over ties (1-based)
    uniq, start, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = start + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def detection(flagged: np.ndarray, positive: np.ndarray, scores: np.ndarray | None = None) -> dict[str, float]:
    """TPR, FPR, precision, F1 of flags against the truth, and AUROC of scores when given."""
    flagged = np.asarray(flagged, dtype=bool)
    positive = np.asarray(positive, dtype=bool)
    tp = int((flagged & positive).sum())
    fp = int((flagged & ~positive).sum())
    fn = int((~flagged & positive).sum())
    tn = int((~flagged & ~positive).sum())
    tpr = tp / (tp + fn) if tp + fn else 0.0
    fpr = fp / (fp + tn) if fp + tn else 0.0
    precision = tp / (tp + fp) if tp + fp else 0.0
    f1 = 2 * precision * tpr / (precision + tpr) if precision + tpr else 0.0
    out = {"tp": tp, "fp": fp, "fn": fn, "tn": tn, "tpr": tpr, "fpr": fpr, "precision": precision, "f1": f1}
    if scores is not None:
        out["auroc"] = auroc(scores, positive)
    return out
