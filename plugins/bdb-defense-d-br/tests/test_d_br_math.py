"""D-BR's pieces: the unlearning loss and the FCT metric it separates with, on hand numbers."""

import math

import torch
from torch import nn

from bdcore import TrainSet, fct, fct_scores, sensitivity_split

from bdb_defense_d_br.defense import Ascent


def test_unlearning_is_the_negated_cross_entropy():
    model = nn.Identity()
    got = Ascent().loss(model, torch.zeros(2, 4), torch.tensor([0, 3]), None)
    assert abs(float(got) + math.log(4)) < 1e-6


def test_fct_is_the_mean_squared_feature_change():
    # features (1, 2) -> (1, 0) and (0, 0) -> (0, 3): (0 + 4) / 2 and (0 + 9) / 2
    assert fct(torch.tensor([[1.0, 2.0], [0.0, 0.0]]), torch.tensor([[1.0, 0.0], [0.0, 3.0]])).tolist() == [2.0, 4.5]


def test_a_corner_trigger_makes_a_sample_sensitive():
    # features = the image itself; a bright corner (a trigger) moves under rotation + translation, a blank image not
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 2))
    x = torch.zeros(4, 1, 6, 6, dtype=torch.uint8)
    x[2:, :, 4:, 4:] = 255
    scores = fct_scores(model, TrainSet(x, torch.zeros(4, dtype=torch.long)), seed=0)
    assert scores[:2].tolist() == [0.0, 0.0] and (scores[2:] > 0).all()
    clean, poison = sensitivity_split(scores, 0.5, 0.25)
    assert clean.tolist() == [True, True, False, False] and poison[2:].sum() == 1 and not poison[:2].any()
