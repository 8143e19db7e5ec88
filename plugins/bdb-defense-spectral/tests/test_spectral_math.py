"""Spectral Signatures: the score on matrices with a known top singular vector, and the removal rule."""

import torch

from bdb_defense_spectral.defense import spectral_scores, top_share


def test_score_is_squared_projection_on_the_top_singular_vector():
    # centred rows; the top right singular vector is e1 (singular values sqrt(8) > sqrt(2))
    x = torch.tensor([[2.0, 0.0], [-2.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    assert torch.allclose(spectral_scores(x), torch.tensor([4.0, 4.0, 0.0, 0.0], dtype=torch.float64), atol=1e-9)


def test_rows_are_centred_first():
    x = torch.tensor([[2.0, 0.0], [-2.0, 0.0], [0.0, 1.0], [0.0, -1.0]]) + torch.tensor([10.0, -3.0])
    assert torch.allclose(spectral_scores(x), torch.tensor([4.0, 4.0, 0.0, 0.0], dtype=torch.float64), atol=1e-9)


def test_a_shifted_minority_scores_highest():
    g = torch.Generator().manual_seed(0)
    clean = torch.randn(90, 8, generator=g)
    poison = torch.randn(10, 8, generator=g) + torch.tensor([6.0] + [0.0] * 7)
    s = spectral_scores(torch.cat([clean, poison]))
    assert set(torch.argsort(s, descending=True)[:10].tolist()) == set(range(90, 100))


def test_top_share_removes_ceil_of_the_share():
    s = torch.tensor([1.0, 5.0, 3.0, 4.0, 0.0, 2.0, 6.0])
    assert torch.nonzero(top_share(s, 0.15)).flatten().tolist() == [1, 6]  # ceil(0.15 * 7 = 1.05) = 2 highest
    assert torch.nonzero(top_share(s, 1 / 7)).flatten().tolist() == [6]     # exactly 1 (no float round-up)
    assert not top_share(s, 0.0).any()


def test_uncentred_score_is_the_absolute_projection_of_the_raw_rows():
    # the reference: v from the centred matrix (e1 here), the score abs(v . x) of the uncentred rows
    x = torch.tensor([[2.0, 0.0], [-2.0, 0.0], [0.0, 1.0], [0.0, -1.0]]) + torch.tensor([10.0, -3.0])
    assert torch.allclose(spectral_scores(x, centred=False), torch.tensor([12.0, 8.0, 10.0, 10.0], dtype=torch.float64),
                          atol=1e-9)
