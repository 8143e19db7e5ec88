"""SPECTRE: the QUE score on a hand-computable whitened matrix, and robust whitening."""

import math

import numpy as np
import torch

from bdb_defense_spectre.defense import que_scores, robust_whiten


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
