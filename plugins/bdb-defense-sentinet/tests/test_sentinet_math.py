"""SentiNet: the clean boundary fit, the distance above it, the transplant counts and Grad-CAM on toy models."""

import numpy as np
import torch
from torch import nn

from bdb_defense_sentinet.defense import boundary_distance, fit_boundary, grad_cam, transplant


def test_boundary_passes_through_each_intervals_highest_point():
    conf = np.array([0.1, 0.15, 0.5, 0.55, 0.9, 0.95])
    fooled = np.array([0.2, 0.1, 0.4, 0.3, 0.2, 0.6])
    coef, lo, hi = fit_boundary(conf, fooled, 3)  # intervals [0.1, .383), [.383, .667), [.667, .95]
    assert (lo, hi) == (0.1, 0.95)
    d = boundary_distance(torch.tensor([0.1, 0.5, 0.95]), torch.tensor([0.2, 0.4, 0.6]), coef, lo, hi)
    assert torch.allclose(d, torch.zeros(3, dtype=torch.float64), atol=1e-6)  # three points: an exact quadratic
    # above the boundary by 0.3; outside the clean confidence range the boundary is held at its end
    far = boundary_distance(torch.tensor([2.0]), torch.tensor([0.9]), coef, lo, hi)
    assert torch.allclose(far, torch.tensor([0.3], dtype=torch.float64), atol=1e-6)


class _Corner(nn.Module):
    """Class 1 when the top-left 2x2 corner is bright, else class 0; confident either way."""

    def forward(self, x):
        v = x[:, 0, :2, :2].mean((1, 2))
        return torch.stack([10 * (0.5 - v), 10 * (v - 0.5)], 1)


def test_transplanting_a_trigger_corner_fools_every_eligible_carrier():
    x = torch.zeros(1, 1, 6, 6)
    x[:, :, :2, :2] = 1.0
    masks = torch.zeros(1, 1, 6, 6)
    masks[:, :, :2, :2] = 1.0
    carriers = torch.zeros(5, 1, 6, 6)
    carriers[4, :, :2, :2] = 1.0  # already class 1: not counted
    gen = torch.Generator().manual_seed(0)
    carrier_pred = _Corner()(carriers).argmax(1)
    fooled, conf = transplant(_Corner(), x, masks, torch.tensor([1]), carriers, carrier_pred, gen)
    assert fooled.tolist() == [1.0]                     # 4 of 4 eligible carriers now predict class 1
    assert 0.5 < float(conf) <= 1.0                     # mean top probability with noise in the corner


def test_grad_cam_marks_the_pixels_the_class_uses_even_under_no_grad():
    net = nn.Sequential(nn.Conv2d(1, 1, 1, bias=False), nn.Flatten(), nn.Linear(36, 2))
    with torch.no_grad():
        net[0].weight.fill_(1.0)
        net[2].weight.zero_()
        net[2].bias.copy_(torch.tensor([0.0, -1.0]))
        net[2].weight[1, :] = 1.0  # class 1 sums the map
    x = torch.zeros(1, 1, 6, 6)
    x[:, :, 4:, 4:] = 1.0
    with torch.no_grad():
        cam, pred = grad_cam(net, net[0], x)
    assert pred.tolist() == [1]
    assert (cam[0, 4:, 4:] == 1).all() and float(cam[0, :3, :3].max()) == 0.0
