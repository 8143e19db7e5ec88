"""Cognitive Distillation: the total-variation and norm terms by hand, and masks on toy models."""

import torch
from torch import nn

from bdb_defense_cd.defense import cd_loss, distil_masks, total_variation


def test_total_variation_by_hand():
    mask = torch.tensor([[[[0.0, 1.0], [1.0, 1.0]]]])
    # vertical differences (1 - 0)^2 + 0, horizontal (1 - 0)^2 + 0, over C * H * W = 4
    assert torch.allclose(total_variation(mask), torch.tensor([0.5]))
    stripes = torch.tensor([[[[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]]]])
    assert torch.allclose(total_variation(stripes), torch.tensor([4 / 6]))  # 4 horizontal jumps, none vertical


class _Const(nn.Module):
    def forward(self, x):
        return torch.ones(len(x), 3)


def test_loss_of_a_constant_model_is_the_penalties_alone():
    mask = torch.full((1, 1, 4, 4), 0.5)
    x, noise = torch.rand(1, 1, 4, 4), torch.rand(1, 1, 1, 1)
    loss = cd_loss(_Const(), x, torch.ones(1, 3), mask, noise, gamma=0.01, beta=10.0, p=1)
    assert torch.allclose(loss, torch.tensor([0.01 * 8]))  # L1 of sixteen 0.5s; a flat mask has no TV
    assert torch.allclose(cd_loss(_Const(), x, torch.ones(1, 3), mask, noise, gamma=0.01, beta=10.0, p=2),
                          torch.tensor([0.01 * 2]))  # L2: sqrt(16 * 0.25)


class _OnePixel(nn.Module):
    """Logits depend on pixel (0, 0) only."""

    def forward(self, x):
        v = x[:, 0, 0, 0]
        return torch.stack([10 * v, -10 * v], 1)


def test_masks_keep_only_what_the_model_looks_at():
    gen = torch.Generator().manual_seed(0)
    x = torch.full((2, 1, 6, 6), 0.9)
    m = distil_masks(_OnePixel(), x, lr=0.1, p=1, gamma=0.01, beta=0.0, steps=100, gen=gen)
    assert m.shape == (2, 1, 6, 6)
    assert (m[:, 0, 0, 0] > 0.8).all()                    # the pixel the logits need stays
    assert float(m[:, 0].flatten(1)[:, 1:].max()) < 0.2   # everything else is distilled away
    assert float(distil_masks(_Const(), x, lr=0.1, p=1, gamma=0.01, beta=10.0, steps=100, gen=gen).sum()) < 1.0
