"""The protocol's metrics against hand-computed values."""

import math

import numpy as np
import pytest

from bdcore.bench.metrics import accuracy, auroc, broken_victim, der, detection, rir


def test_accuracy():
    assert accuracy(np.array([1, 2, 3, 4]), np.array([1, 2, 0, 0])) == 0.5
    assert accuracy(np.array([]), np.array([])) == 0.0


def test_der_counts_asr_drop_minus_accuracy_drop():
    before = {"cacc": 0.95, "asr": 0.99, "ra": 0.01}
    after = {"cacc": 0.90, "asr": 0.09, "ra": 0.85}
    # (0.90 - 0.05 + 1) / 2 = 0.925
    assert der(before, after) == pytest.approx(0.925)
    # RIR: (0.84 - 0.05 + 1) / 2 = 0.895
    assert rir(before, after) == pytest.approx(0.895)


def test_der_ignores_gains_in_accuracy_and_rises_in_asr():
    before = {"cacc": 0.90, "asr": 0.50, "ra": 0.40}
    after = {"cacc": 0.95, "asr": 0.60, "ra": 0.30}
    assert der(before, after) == 0.5
    assert rir(before, after) == 0.5


def test_auroc_hand_computed_with_ties():
    scores = np.array([0.1, 0.4, 0.35, 0.8, 0.4])
    positive = np.array([False, False, True, True, True])
    # pairs (pos, neg): 0.35>0.1 yes, 0.35>0.4 no, 0.8>both, 0.4>0.1 yes, 0.4=0.4 half -> 4.5 / 6
    assert auroc(scores, positive) == pytest.approx(4.5 / 6)
    assert auroc(np.array([3.0, 2.0, 1.0]), np.array([True, False, False])) == 1.0
    assert auroc(np.array([1.0, 2.0]), np.array([True, False])) == 0.0
    assert math.isnan(auroc(np.array([1.0]), np.array([True])))


def test_detection_counts():
    flagged = np.array([1, 1, 0, 0, 1, 0], dtype=bool)
    truth = np.array([1, 0, 1, 0, 1, 0], dtype=bool)
    d = detection(flagged, truth)
    assert (d["tp"], d["fp"], d["fn"], d["tn"]) == (2, 1, 1, 2)
    assert d["tpr"] == pytest.approx(2 / 3)
    assert d["fpr"] == pytest.approx(1 / 3)
    assert d["precision"] == pytest.approx(2 / 3)
    assert d["f1"] == pytest.approx(2 / 3)
    assert "auroc" not in d
    # positives score (1, 0, 1), negatives (1, 0, 0): wins 1+1 twice, ties 0.5 three times -> 6 / 9
    assert detection(flagged, truth, flagged.astype(float))["auroc"] == pytest.approx(6 / 9)


def test_a_victim_under_three_times_chance_is_broken():
    # 10 classes: the bar is 0.3; 2 classes: 0.5 (chance itself); 200 classes: 0.015
    assert broken_victim(0.2028, 10) and not broken_victim(0.3333, 10) and not broken_victim(0.97, 10)
    assert broken_victim(0.49, 2) and not broken_victim(0.5, 2)
    assert broken_victim(0.01, 200) and not broken_victim(0.02, 200)
    assert not broken_victim(None, 10)
