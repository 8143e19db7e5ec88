"""D-ST's stage-2 loss on hand numbers."""

import math

import torch

from bdcore import mark_untrusted

from bdb_defense_d_st.defense import mixed_cross_entropy


def test_mixed_cross_entropy_subtracts_the_weighted_poison_term():
    y = mark_untrusted(torch.tensor([0, 1]), torch.tensor([False, True]))
    # equal logits over three classes: each CE is ln 3
    got = mixed_cross_entropy(torch.zeros(2, 3), y, 0.001)
    assert abs(float(got) - 0.999 * math.log(3)) < 1e-6
    # a confident right answer on the trusted sample, and the poison term pushes its own label down
    logits = torch.tensor([[10.0, 0.0, 0.0], [0.0, 10.0, 0.0]])
    assert float(mixed_cross_entropy(logits, y, 1.0)) < 0
    assert abs(float(mixed_cross_entropy(torch.zeros(1, 3), torch.tensor([2]), 0.5)) - math.log(3)) < 1e-6
