"""SCAn: the EM split and the two-identity statistic on synthetic representations."""

import torch

from bdb_defense_scan.defense import class_statistic, global_model, split_class


def _clean(n_per=60, classes=4, dim=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    ident = 4 * torch.randn(classes, dim, generator=g, dtype=torch.float64)
    y = torch.arange(classes).repeat_interleave(n_per)
    return ident[y] + torch.randn(len(y), dim, generator=g, dtype=torch.float64), y


def test_global_model_separates_identity_from_variation():
    x, y = _clean()
    s_mu, s_e = global_model(x, y, 4)
    assert torch.allclose(s_e, s_e.T) and torch.allclose(s_mu, s_mu.T)
    # the variation is unit-variance noise: S_e close to the identity
    assert torch.allclose(torch.diagonal(s_e), torch.ones(6, dtype=torch.float64), atol=0.35)


def test_split_finds_two_identities_and_the_statistic_prefers_them():
    x, y = _clean()
    s_mu, s_e = global_model(x, y, 4)
    f = torch.linalg.pinv(s_e)
    gen = torch.Generator().manual_seed(0)
    mixed = torch.cat([x[y == 0], x[y == 1][:20]])  # class 0 with 20 samples of another identity
    mixed = mixed - mixed.mean(0)
    g = split_class(mixed, f, gen)
    assert g[:60].all() != g[60:].all() and (g[:60] == g[0]).all() and (g[60:] == g[60]).all()
    pure = x[y == 2] - x[y == 2].mean(0)
    j_mixed = class_statistic(mixed, g, s_mu, s_e, f)
    j_pure = class_statistic(pure, split_class(pure, f, gen), s_mu, s_e, f)
    assert j_mixed > 5 * abs(j_pure)


def test_statistic_of_a_single_group_is_zero():
    x, y = _clean()
    s_mu, s_e = global_model(x, y, 4)
    f = torch.linalg.pinv(s_e)
    assert class_statistic(x[y == 0], torch.ones(60, dtype=torch.bool), s_mu, s_e, f) == 0.0
