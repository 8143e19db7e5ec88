"""Beatrix: Gram features of a hand-computable map, the median/MAD deviation, and layer discovery."""

import math

import torch

from bdcore import SmallCNN
from bdb_defense_beatrix.defense import deepest_spatial_module, deviation, gram_features, robust_stats


def test_gram_features_of_orders_one_and_two():
    fmap = torch.tensor([[[[1.0, 2.0]], [[3.0, 0.0]]]])  # (1, C=2, H=1, W=2): channels a=(1,2), b=(3,0)
    g = gram_features(fmap, 2)[0]
    order1 = [2.5, 1.5, 4.5]                                     # (a.a, a.b, b.b) / HW
    order2 = [math.sqrt(17 / 2), math.sqrt(9 / 2), math.sqrt(81 / 2)]  # (a^2.a^2, a^2.b^2, b^2.b^2) / HW, then sqrt
    assert torch.allclose(g, torch.tensor(order1 + order2, dtype=torch.float64))


def test_deviation_is_mean_mad_normalised_distance():
    ref = torch.tensor([[0.0, 10.0], [1.0, 10.0], [2.0, 10.0], [3.0, 10.0], [4.0, 10.0]], dtype=torch.float64)
    med, mad = robust_stats(ref)
    assert med.tolist() == [2.0, 10.0] and math.isclose(float(mad[0]), 1.4826)  # MAD of column 1 is 1
    d = deviation(torch.tensor([[2.0 + 2 * 1.4826, 99.0]], dtype=torch.float64), med, mad)
    assert torch.allclose(d, torch.tensor([2.0], dtype=torch.float64))  # the zero-MAD column is left out


def test_deepest_spatial_map_of_small_cnn_is_the_last_relu():
    assert deepest_spatial_module(SmallCNN(), torch.rand(2, 1, 28, 28)) == "features.10"
