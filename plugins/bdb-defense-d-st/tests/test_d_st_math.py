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
    # the suspected sample's label has probability 1/4 (logits 0, 0, ln 2): ln 3 - 0.5 ln 4 = ln 1.5
    logits = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, math.log(2)]])
    assert abs(float(mixed_cross_entropy(logits, y, 0.5)) - math.log(1.5)) < 1e-6
    assert abs(float(mixed_cross_entropy(torch.zeros(1, 3), torch.tensor([2]), 0.5)) - math.log(3)) < 1e-6


def test_stage_two_settings_default_to_the_paper():
    from bdb_defense_d_st.config import DSTConfig

    cfg = DSTConfig()
    assert cfg.classifier_augment is True and cfg.standardize_features is False
