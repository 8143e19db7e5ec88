"""Beatrix: Gram features of a hand-computable map, the median/MAD deviation, and layer discovery."""

import math

import torch

from bdcore import SmallCNN
from bdb_defense_beatrix.defense import (band_deviation, band_stats, class_anomaly, deepest_spatial_module, deviation,
                                        fold_threshold, gram_features, kmmd, robust_stats)


def test_gram_features_of_orders_one_and_two():
    fmap = torch.tensor([[[[1.0, 2.0]], [[3.0, 0.0]]]])  # (1, C=2, H=1, W=2): channels a=(1,2), b=(3,0)
    g = gram_features(fmap, 2)[0]
    order1 = [2.5, 1.5, 4.5]                                     # (a.a, a.b, b.b) / HW
    order2 = [math.sqrt(17 / 2), math.sqrt(9 / 2), math.sqrt(81 / 2)]  # (a^2.a^2, a^2.b^2, b^2.b^2) / HW, then sqrt
    assert torch.allclose(g, torch.tensor(order1 + order2, dtype=torch.float64))


def test_reference_gram_is_the_root_of_one_plain_gram_matrix():
    fmap = torch.tensor([[[[1.0, 2.0]], [[3.0, 0.0]]]])
    g = gram_features(fmap, 2, power=False)[0]
    plain = [5.0, 3.0, 9.0]  # (a.a, a.b, b.b), no division by HW
    assert torch.allclose(g, torch.tensor(plain + [math.sqrt(v) for v in plain], dtype=torch.float64))


def test_band_deviation_counts_only_the_excess_beyond_ten_mads():
    ref = torch.tensor([[1.0], [2.0], [3.0], [4.0]], dtype=torch.float64)  # lower median 2, MAD 1 (lower): [-8, 12]
    lo, hi = band_stats(ref, 10.0)
    assert lo.tolist() == [-8.0] and hi.tolist() == [12.0]
    d = band_deviation(torch.tensor([[5.0], [18.0], [-12.0]], dtype=torch.float64), lo, hi)
    assert torch.allclose(d, torch.tensor([0.0, 6 / (12 + 1e-6), 4 / (8 - 1e-6)], dtype=torch.float64))


def test_fold_threshold_is_the_percentile_of_held_out_deviations():
    # 10 rows, 5 folds of 2; one far row: only its own fold sees it as deviating
    g = torch.zeros(10, 1, dtype=torch.float64)
    g[:, 0] = torch.tensor([1.0, 1.1, 0.9, 1.0, 1.05, 0.95, 1.0, 1.0, 1.02, 50.0])
    t = fold_threshold(g, 10.0, 5, 95.0)  # element int(10 x 0.95) = 9 of the sorted held-out deviations: the largest
    lo, hi = band_stats(g[:8], 10.0)
    assert math.isclose(t, float(band_deviation(g[9:], lo, hi)[0]))
    assert fold_threshold(g, 10.0, 5, 50.0) == 0.0  # the median held-out row sits inside its band


def test_kmmd_separates_shifted_samples_and_the_class_test_names_the_outlier():
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(50, 4, generator=gen), torch.randn(50, 4, generator=gen)
    assert kmmd(a, b + 5) > 10 * kmmd(a, b)
    j = torch.tensor([0.10, 0.12, 0.11, 0.09, 0.10, 3.0, 0.13, 0.10, 0.11, 0.12], dtype=torch.float64)
    assert torch.nonzero(class_anomaly(j) > math.e ** 2).flatten().tolist() == [5]


def test_deviation_is_mean_mad_normalised_distance():
    ref = torch.tensor([[0.0, 10.0], [1.0, 10.0], [2.0, 10.0], [3.0, 10.0], [4.0, 10.0]], dtype=torch.float64)
    med, mad = robust_stats(ref)
    assert med.tolist() == [2.0, 10.0] and math.isclose(float(mad[0]), 1.4826)  # MAD of column 1 is 1
    d = deviation(torch.tensor([[2.0 + 2 * 1.4826, 99.0]], dtype=torch.float64), med, mad)
    assert torch.allclose(d, torch.tensor([2.0], dtype=torch.float64))  # the zero-MAD column is left out


def test_deepest_spatial_map_of_small_cnn_is_the_last_relu():
    assert deepest_spatial_module(SmallCNN(), torch.rand(2, 1, 28, 28)) == "features.10"
