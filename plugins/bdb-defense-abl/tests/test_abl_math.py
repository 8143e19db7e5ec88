"""ABL's pieces on hand numbers: the LGA loss, the isolation of the lowest losses, the hooks (LGA and the
isolation live in the core, bdcore.lib.isolation, shared with NAB; the unlearning hook is ABL's)."""

import torch
from torch import nn

from bdcore import LGA, lga_loss
from bdcore import lowest_share as lowest

from bdb_defense_abl.defense import Ascent


def test_lga_descends_above_gamma_and_ascends_below():
    loss = torch.tensor([0.8, 0.5, 0.2], requires_grad=True)
    out = lga_loss(loss, 0.5)
    assert torch.allclose(out, torch.tensor([0.8, 0.0, -0.2]))
    out.sum().backward()
    assert loss.grad.tolist() == [1.0, 0.0, -1.0]  # minimising it pushes L down above gamma, up below


def test_isolation_picks_the_k_lowest_losses():
    losses = torch.tensor([0.9, 0.01, 0.5, 0.002, 0.3, 0.7, 0.05, 1.2, 0.4, 0.6])
    assert lowest(losses, 0.2).nonzero().flatten().tolist() == [1, 3]
    assert lowest(losses, 0.3).nonzero().flatten().tolist() == [1, 3, 6]
    assert int(lowest(losses, 0.01).sum()) == 1  # at least one sample


def test_hooks_compute_lga_and_negated_cross_entropy():
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    x, y = torch.randn(8, 4), torch.randint(0, 3, (8,))
    ce = nn.functional.cross_entropy(model(x), y)
    assert torch.allclose(LGA(0.5).loss(model, x, y, None), torch.sign(ce - 0.5) * ce)
    assert torch.allclose(LGA(10.0).loss(model, x, y, None), -ce)
    assert torch.allclose(Ascent().loss(model, x, y, None), -ce)
