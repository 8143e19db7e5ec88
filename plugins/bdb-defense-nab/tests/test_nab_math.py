"""NAB's pieces on hand numbers: the defensive trigger, the relabelled set, the stamping model."""

import torch
from torch import nn

from bdcore import TrainSet, lga_loss

from bdb_defense_nab.defense import Stamped, defensive_mask, relabelled, trigger_colour


def test_lga_is_abl_s_objective():
    assert torch.allclose(lga_loss(torch.tensor([0.8, 0.2]), 0.5), torch.tensor([0.8, -0.2]))


def test_defensive_mask_is_a_top_left_square():
    m = defensive_mask((1, 6, 6), 2)
    assert m.shape == (1, 6, 6) and int(m.sum()) == 4 and m[0, :2, :2].all()


def test_relabelled_stamps_and_relabels_only_the_detected_samples():
    x = torch.zeros(3, 1, 4, 4, dtype=torch.uint8)
    y = torch.tensor([0, 0, 5])
    out = relabelled(TrainSet(x, y), torch.tensor([False, True, False]), torch.tensor([7]), defensive_mask((1, 4, 4), 2))
    assert out.y.tolist() == [0, 7, 5]
    assert out.x.dtype == torch.uint8 and out.x[1, 0, :2, :2].eq(255).all() and int(out.x[1].sum()) == 4 * 255
    assert int(out.x[0].sum()) == 0 and int(out.x[2].sum()) == 0
    assert int(x.sum()) == 0  # the original set is untouched


def test_stamped_model_sees_the_trigger_on_every_input():
    seen = []

    class Probe(nn.Module):
        def forward(self, x):
            seen.append(x)
            return x.flatten(1)

    Stamped(Probe(), defensive_mask((1, 3, 3), 1))(torch.zeros(2, 1, 3, 3))
    assert seen[0][:, 0, 0, 0].tolist() == [1.0, 1.0] and float(seen[0].sum()) == 2.0


def test_reference_stamping_marks_only_the_samples_whose_label_changes_in_the_mean_colour():
    x = torch.zeros(3, 1, 4, 4, dtype=torch.uint8)
    y = torch.tensor([3, 4, 5])
    colour = trigger_colour("mean", (0.1307,))
    out = relabelled(TrainSet(x, y), torch.tensor([True, True, False]), torch.tensor([3, 9]),
                     defensive_mask((1, 4, 4), 2), colour, only_changed=True)
    assert out.y.tolist() == [3, 9, 5]                   # every detected sample takes the stand-in label
    assert int(out.x[0].sum()) == 0                       # label unchanged: no trigger
    assert out.x[1, 0, :2, :2].eq(33).all() and int(out.x[1].sum()) == 4 * 33  # round(0.1307 x 255) = 33
    assert torch.allclose(trigger_colour("white", (0.5, 0.4, 0.3)), torch.ones(3, 1, 1))


def test_stamped_model_uses_the_trigger_colour():
    seen = []

    class Probe(nn.Module):
        def forward(self, x):
            seen.append(x)
            return x.flatten(1)

    mask, colour = defensive_mask((2, 2, 2), 1), torch.tensor([0.25, 0.5]).view(2, 1, 1)
    Stamped(Probe(), mask, colour)(torch.ones(1, 2, 2, 2))
    assert seen[0][0, :, 0, 0].tolist() == [0.25, 0.5] and float(seen[0].sum()) == 6.0 + 0.75
