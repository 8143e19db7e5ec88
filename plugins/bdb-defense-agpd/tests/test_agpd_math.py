"""AGPD: dispersion, the one-sided MAD index, the closeness ratio, the filtering rounds and the stopping window
on hand-computable gradient directions."""

import math

import torch

from bdb_defense_agpd.defense import closeness, dispersion, filter_rounds, one_sided_mad, stop_round


def test_dispersion_of_a_split_class_and_of_a_consistent_one():
    basis = torch.tensor([1.0, 0.0], dtype=torch.float64)
    # two samples along the basis, one orthogonal (the seed): cos_c = (1, 1, 0), cos_p = (0, 0, 1)
    split = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0]], dtype=torch.float64)
    d, seed = dispersion(split, basis)
    assert seed == 2 and math.isclose(d, math.sqrt(2) / math.sqrt(3))
    same = torch.tensor([[1.0, 0.0], [2.0, 0.0], [3.0, 0.0]], dtype=torch.float64)
    assert dispersion(same, basis)[0] == 0.0


def test_one_sided_mad_is_zero_below_the_median():
    j = one_sided_mad(torch.tensor([1.0, 2.0, 3.0, 4.0, 100.0], dtype=torch.float64))
    # median 3, MAD median(|v - 3|) = median(2, 1, 0, 1, 97) = 1
    assert torch.allclose(j, torch.tensor([0, 0, 0, 1, 97], dtype=torch.float64) / 1.4826 / (1 + 1e-6))


def test_closeness_is_zero_on_the_poison_direction_and_one_on_the_clean_one():
    g = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], dtype=torch.float64)
    r = closeness(g, torch.tensor([1.0, 0.0], dtype=torch.float64), torch.tensor([0.0, 1.0], dtype=torch.float64))
    assert torch.allclose(r, torch.tensor([0.0, 1.0, 0.5], dtype=torch.float64))


def test_filtering_takes_the_poison_cluster_first_and_stops_before_the_clean_rounds():
    gen = torch.Generator().manual_seed(0)
    basis = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    clean = basis + 0.3 * torch.randn(60, 3, generator=gen, dtype=torch.float64)
    poison = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64) + 0.05 * torch.randn(20, 3, generator=gen,
                                                                                    dtype=torch.float64)
    g = torch.cat([poison, clean])
    _, seed = dispersion(g, basis)
    assert seed < 20
    rounds, js = filter_rounds(g, basis, seed, tau=0.1)
    assert int(rounds[:20].max()) < int(rounds[20:].min())  # every poisoned row joins before any clean one
    stop = stop_round(js, 10)
    assert ((rounds < stop)[:20]).all() and not ((rounds < stop)[20:]).any()


def test_stop_round_picks_the_smallest_steadiest_window():
    assert stop_round([0.9, 0.5, 0.1, 0.1, 0.1], 2) == 2  # windows: 1.7, 1.3, 0.1, 0.1 (mean + 5 std)
    assert stop_round([0.1, 0.1, 0.9], 2) == 1  # the seed alone at least
    assert stop_round([], 10) == 1
