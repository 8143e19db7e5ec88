"""Activation Clustering: clustering, the two decision rules and the suspicion margin on known blobs."""

import numpy as np

from bdb_defense_ac.defense import cluster_class, reduce_dims, smallest_is_poisoned


def _blobs(n_big=80, n_small=20, gap=10.0, dim=12, seed=0):
    rng = np.random.default_rng(seed)
    big = rng.normal(size=(n_big, dim))
    small = rng.normal(size=(n_small, dim)) + gap
    return np.concatenate([big, small])


def test_reduce_dims_keeps_at_most_dims_components():
    x = _blobs()
    assert reduce_dims(x, 10, "pca", 0).shape == (100, 10)
    assert reduce_dims(x, 10, "ica", 0).shape == (100, 10)
    assert reduce_dims(x[:5], 10, "pca", 0).shape == (5, 4)  # at most n - 1 components


def test_two_separated_blobs_split_with_the_small_one_closest_to_its_centroid():
    z = reduce_dims(_blobs(), 10, "pca", 0)
    lab, sil, margin = cluster_class(z, 2, 0)
    small = np.argmin(np.bincount(lab))
    assert (lab[80:] == small).all() and (lab[:80] != small).all()
    assert np.bincount(lab)[small] / len(lab) == 0.2  # < 0.35: the relative-size rule flags it
    assert sil > 0.8
    assert (margin[80:] > 0.5).all() and (margin[:80] < -0.5).all()


def test_margin_is_plus_one_on_the_small_centroid_and_minus_one_on_the_other():
    z = np.array([[0.0], [0.0], [0.0], [10.0]])  # clusters {0,0,0} and {10}: the small one is at 10
    lab, sil, margin = cluster_class(z, 2, 0)
    assert np.allclose(margin, [-1.0, -1.0, -1.0, 1.0])
    assert sil == 0.75  # three samples at silhouette 1; a singleton cluster's sample counts 0 (scikit-learn)


def test_smaller_rule_flags_every_split_class_and_relative_size_only_small_clusters():
    even, lopsided, unsplit = np.array([50, 50]), np.array([80, 20]), np.array([100, 0])
    assert smallest_is_poisoned(even, "smaller", 0.35)       # the reference's defense script: no size test
    assert smallest_is_poisoned(lopsided, "smaller", 0.35)
    assert not smallest_is_poisoned(unsplit, "smaller", 0.35)  # nothing to remove
    assert not smallest_is_poisoned(even, "relative-size", 0.35)
    assert smallest_is_poisoned(lopsided, "relative-size", 0.35)  # 0.2 < 0.35
    assert not smallest_is_poisoned(lopsided, "relative-size", 0.2)  # strictly below
    assert not smallest_is_poisoned(unsplit, "relative-size", 0.35)
