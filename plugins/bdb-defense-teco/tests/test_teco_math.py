"""TeCo: flip severities and their deviation on hand cases and on a toy model, and the corruptions' contracts."""

import math

import pytest
import torch
from torch import nn

from bdb_defense_teco.corruptions import CORRUPTIONS, brightness, contrast
from bdb_defense_teco.defense import deviation, flip_severities, teco_scores


def test_flip_severity_is_the_first_change_and_six_when_it_never_flips():
    original = torch.tensor([1])
    preds = torch.tensor([[[1, 3, 3, 1, 1],    # flips at severity 2
                           [1, 1, 1, 1, 1],    # never: 5 + 1
                           [0, 0, 0, 0, 0]]])  # at once: 1
    sev = flip_severities(preds, original)
    assert sev.tolist() == [[2, 6, 1]]
    assert math.isclose(float(deviation(sev)[0]), math.sqrt(14 / 3))  # mean 3, squared deviations 1, 9, 4


class _MeanThreshold(nn.Module):
    """Class 1 when the mean pixel exceeds 0.47: brightness moves it, contrast and noise keep the mean."""

    def forward(self, x):
        return torch.stack([torch.zeros(len(x)), 100 * (x.mean((1, 2, 3)) - 0.47)], 1)


def test_deviation_of_a_toy_model_by_hand():
    x = torch.full((2, 1, 28, 28), 0.4)
    gen = torch.Generator().manual_seed(0)
    score, sev = teco_scores(_MeanThreshold(), x, ["brightness", "contrast", "gaussian_noise"], 5, gen)
    # brightness: 0.45 at severity 1 (still class 0), 0.5 at severity 2 (flips); the others never flip
    assert sev.tolist() == [[2, 6, 6], [2, 6, 6]]
    assert torch.allclose(score, torch.full((2,), math.sqrt(((2 - 14 / 3) ** 2 + 2 * (6 - 14 / 3) ** 2) / 3),
                                            dtype=torch.float64))


def test_brightness_and_contrast_in_closed_form():
    grey = torch.tensor([[[[0.0, 0.5], [0.9, 1.0]]]])
    gen = torch.Generator()
    assert torch.allclose(brightness(grey, 2, gen), torch.tensor([[[[0.1, 0.6], [1.0, 1.0]]]]))  # min(x + 0.1, 1)
    rgb = torch.tensor([0.2, 0.4, 0.8]).view(1, 3, 1, 1)
    assert torch.allclose(brightness(rgb, 5, gen), rgb / 0.8)  # HSV value 0.8 + 0.3 clipped to 1
    out = contrast(grey, 1, gen)  # (x - mean) * 0.75 + mean
    assert torch.allclose(out, (grey - 0.6) * 0.75 + 0.6)


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_every_corruption_keeps_shape_and_range_for_grey_and_colour(name):
    gen = torch.Generator().manual_seed(0)
    for x in (torch.rand(3, 1, 28, 28, generator=gen), torch.rand(2, 3, 32, 32, generator=gen)):
        for s in (1, 5):
            y = CORRUPTIONS[name](x, s, gen)
            assert y.shape == x.shape and bool(torch.isfinite(y).all()) and float(y.min()) >= 0 and float(y.max()) <= 1
