"""STRIP: entropy of known distributions, the 5%-FRR threshold, and the score of a constant model."""

import math

import torch
from torch import nn

from bdcore import threshold_at_frr
from bdb_defense_strip.defense import entropy_bits, strip_scores


def test_entropy_in_bits_of_known_distributions():
    p = torch.tensor([[0.25, 0.25, 0.25, 0.25], [1.0, 0.0, 0.0, 0.0], [0.5, 0.5, 0.0, 0.0], [0.5, 0.25, 0.125, 0.125]])
    assert torch.allclose(entropy_bits(p), torch.tensor([2.0, 0.0, 1.0, 1.75]))


def test_threshold_rejects_five_percent_of_the_clean_scores():
    s = torch.arange(1, 101).float()  # 1 .. 100
    t = threshold_at_frr(s, 0.05)
    assert t == 95.0 and int((s > t).sum()) == 5
    assert int((s > threshold_at_frr(s[:40], 0.05)).sum()) > 0  # 40 scores: floor(2) = 2 of them rejected
    assert int((s[:40] > threshold_at_frr(s[:40], 0.05)).sum()) == 2


class _Const(nn.Module):
    def __init__(self, logits):
        super().__init__()
        self.logits = torch.tensor(logits)

    def forward(self, x):
        return self.logits.expand(x.shape[0], -1)


def test_score_is_minus_mean_entropy_of_the_blends():
    x, pool = torch.rand(3, 1, 4, 4), torch.rand(5, 1, 4, 4)
    gen = torch.Generator().manual_seed(0)
    uniform = strip_scores(_Const([0.0] * 10), x, pool, n=8, alpha=0.5, gen=gen)
    assert torch.allclose(uniform, torch.full((3,), -math.log2(10)))
    certain = strip_scores(_Const([100.0] + [0.0] * 9), x, pool, n=8, alpha=0.5, gen=gen)
    assert torch.allclose(certain, torch.zeros(3), atol=1e-6)


def test_additive_superimposition_saturates():
    class _Mean(nn.Module):  # logits (5 * mean pixel, 0): exposes what the model saw
        def forward(self, x):
            return torch.stack([x.mean((1, 2, 3)) * 5, torch.zeros(len(x))], 1)

    x, pool = torch.full((1, 1, 2, 2), 0.8), torch.full((4, 1, 2, 2), 0.6)
    gen = torch.Generator().manual_seed(0)
    add = strip_scores(_Mean(), x, pool, n=4, alpha=0.5, gen=gen, superimpose="add")      # saw 1.0 (clipped)
    blend = strip_scores(_Mean(), x, pool, n=4, alpha=0.5, gen=gen, superimpose="blend")  # saw 0.7
    want = -entropy_bits(torch.tensor([[5.0, 0.0], [3.5, 0.0]]).softmax(1))
    assert torch.allclose(add, want[:1], atol=1e-6) and torch.allclose(blend, want[1:], atol=1e-6)
