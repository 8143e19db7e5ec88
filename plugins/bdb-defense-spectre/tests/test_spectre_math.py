"""SPECTRE: the QUE score on a hand-computable whitened matrix, and robust whitening."""

import math

import numpy as np
import torch

from bdb_defense_spectre.defense import candidate_dims, kept_statistic, que_scores, que_statistic, robust_whiten


def test_que_score_hand_computed():
    # S = z'z/n = diag(2, 0.5), ||S|| = 2, Q = exp(4 (S - I) / (2 - 1)) = diag(e^4, e^-2)
    z = torch.tensor([[2.0, 0.0], [-2.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    tr = math.exp(4) + math.exp(-2)
    want = torch.tensor([4 * math.exp(4) / tr] * 2 + [math.exp(-2) / tr] * 2, dtype=torch.float64)
    assert torch.allclose(que_scores(z, 4.0), want)


def test_que_without_excess_variance_is_the_mean_squared_norm():
    z = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 0.5], [0.0, -0.5]])  # ||S|| = 0.5 <= 1: Q = I
    assert torch.allclose(que_scores(z, 4.0), torch.tensor([0.5, 0.5, 0.125, 0.125], dtype=torch.float64))


def test_robust_whitening_ignores_a_shifted_minority_and_que_ranks_it_first():
    rng = np.random.default_rng(0)
    clean = rng.normal(size=(180, 5)) * [3.0, 1.0, 1.0, 0.5, 0.5]
    poison = rng.normal(size=(20, 5)) * 0.3 + [0.0, 0.0, 8.0, 0.0, 0.0]
    z = robust_whiten(np.concatenate([clean, poison]), 0.85, 0)
    assert np.allclose(np.median(z[:180], 0), 0, atol=0.4)  # centred on the clean majority
    assert np.abs(z[180:, 2]).mean() > 4  # the shift (8 clean std) stays far in whitened units
    tau = que_scores(torch.from_numpy(z), 4.0)
    assert len(set(torch.argsort(tau, descending=True)[:20].tolist()) & set(range(180, 200))) >= 18


def test_candidate_dims_are_the_references_squares():
    assert candidate_dims(64) == [1, 4, 9, 16, 25, 36, 49, 64]


def test_que_statistic_hand_computed():
    s = torch.diag(torch.tensor([2.0, 0.5], dtype=torch.float64))  # Q = diag(e^4, e^-2)
    want = (2 * math.exp(4) + 0.5 * math.exp(-2)) / (math.exp(4) + math.exp(-2))
    assert math.isclose(que_statistic(s, 4.0), want, rel_tol=1e-12)
    assert math.isclose(que_statistic(torch.eye(3, dtype=torch.float64) * 0.5, 4.0), 0.5)  # Q = I


def test_a_kept_set_without_the_poison_scores_higher_than_one_with_it():
    rng = np.random.default_rng(0)
    reps = np.concatenate([rng.normal(size=(180, 4)), rng.normal(size=(20, 4)) * 0.3 + [6.0, 0, 0, 0]])
    clean = np.arange(200) < 180
    mixed = np.ones(200, dtype=bool)
    mixed[:20] = False  # twenty clean rows removed, the poison kept
    assert kept_statistic(reps, clean, 4.0) > 2 * kept_statistic(reps, mixed, 4.0)
