"""DBD's pieces on hand numbers: symmetric cross-entropy, sharpening, the labelled share (BN re-estimation:
tests/test_contrastive_and_isolation.py)."""

import math

import torch

from bdb_defense_dbd.defense import lowest, sharpen, symmetric_cross_entropy


def test_symmetric_cross_entropy_on_hand_numbers():
    # two classes, equal logits: CE = ln 2; RCE = -(0.5 log 1 + 0.5 log 1e-4) = 0.5 * ln(1e4)
    got = symmetric_cross_entropy(torch.zeros(1, 2), torch.tensor([0]), alpha=0.1, beta=1.0)
    assert abs(float(got) - (0.1 * math.log(2) + 0.5 * math.log(1e4))) < 1e-5   # 4.674485
    # a confident right answer: p_y = 1 - 1e-7 after clamping, so RCE is nearly 0 and SCE ~ alpha * CE
    sure = symmetric_cross_entropy(torch.tensor([[20.0, 0.0]]), torch.tensor([0]), 0.1, 1.0, reduction="none")
    assert sure.shape == (1,) and float(sure) < 1e-5
    # a confident wrong answer: RCE saturates at ln(1e4) = 9.2103
    wrong = symmetric_cross_entropy(torch.tensor([[0.0, 20.0]]), torch.tensor([0]), 0.0, 1.0)
    assert abs(float(wrong) - math.log(1e4)) < 1e-4


def test_sharpen_and_lowest():
    assert torch.allclose(sharpen(torch.tensor([[0.6, 0.4]]), 0.5), torch.tensor([[0.36 / 0.52, 0.16 / 0.52]]))
    assert lowest(torch.tensor([3.0, 1.0, 2.0, 0.5]), 0.5).tolist() == [False, True, False, True]


def test_lowest_per_class_keeps_every_class():
    # globally the two smallest are both class 0; per class, the smaller half of each class is kept
    values = torch.tensor([0.1, 0.2, 5.0, 6.0, 0.3, 9.0, 7.0, 8.0])
    groups = torch.tensor([0, 0, 1, 1, 0, 1, 0, 1])
    assert lowest(values, 0.25).tolist() == [True, True, False, False, False, False, False, False]
    per_class = lowest(values, 0.5, groups)
    assert per_class.tolist() == [True, True, True, True, False, False, False, False]
    assert per_class[groups == 1].sum() == 2 and per_class[groups == 0].sum() == 2
