"""Sharpness-aware minimisation through the shared trainer (`bdcore.SAM`, `TrainHook.before_update`)."""

import math

import pytest
import torch
from torch import nn

from bdcore import SAM, TrainHook, sam_perturbation, train
from bdcore.config import TrainRecipe
from bdcore.data.trainset import TrainSet

A = torch.tensor([1.0, 4.0])  # L(w) = 0.5 * sum(A * w^2), gradient A * w


class Quadratic(nn.Module):
    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(w))
        self.bn = nn.BatchNorm1d(1)

    def forward(self, x):
        return self.bn(x.flatten(1)[:, :1])


class QuadraticLoss(TrainHook):
    def loss(self, model, x, y, step):
        model(x)  # one forward pass of the BN layer per loss evaluation
        return 0.5 * (A * model.w ** 2).sum()


def _one_step(w, hook, lr):
    model = Quadratic(w)
    data = TrainSet(torch.full((2, 1, 2, 2), 100, dtype=torch.uint8), torch.zeros(2, dtype=torch.long))
    recipe = TrainRecipe(epochs=1, batch_size=2, lr=lr, momentum=0, weight_decay=0, schedule="constant",
                         augment=False, channels_last=False)
    train(model, data, recipe, seed=0, hooks=[QuadraticLoss(), *([hook] if hook else [])])
    return model


def test_perturbation_plain_and_adaptive_by_hand():
    w, g = [torch.tensor([1.0, 2.0])], [torch.tensor([1.0, 8.0])]
    e = sam_perturbation(w, g, math.sqrt(65))
    assert torch.allclose(e[0], torch.tensor([1.0, 8.0]))  # rho * g / ||g||, ||g|| = sqrt(65)
    e = sam_perturbation(w, g, math.sqrt(257), adaptive=True)
    assert torch.allclose(e[0], torch.tensor([1.0, 32.0]))  # rho * |w|^2 g / || |w| g ||, || (1, 16) || = sqrt(257)
    e = sam_perturbation(w, g, 1.0, adaptive=True, eta=1.0)  # t = |w| + 1 = (2, 3): t^2 g = (4, 72), ||t g|| = sqrt(580)
    assert torch.allclose(e[0], torch.tensor([4.0, 72.0]) / math.sqrt(580))


def test_sam_step_takes_the_gradient_at_the_perturbed_point():
    # w = (1, 1): g = (1, 4), ||g|| = sqrt(17); rho = sqrt(17) -> w + e = (2, 5), gradient there (2, 20)
    m = _one_step([1.0, 1.0], SAM(rho=math.sqrt(17)), lr=0.1)
    assert torch.allclose(m.w.detach(), torch.tensor([1.0 - 0.2, 1.0 - 2.0]))
    # without SAM: plain gradient step from w
    m = _one_step([1.0, 1.0], None, lr=0.1)
    assert torch.allclose(m.w.detach(), torch.tensor([0.9, 0.6]))


def test_adaptive_sam_step_by_hand():
    # w = (1, 2): g = (1, 8), e = (1, 32) (see above) -> w + e = (2, 34), gradient (2, 136)
    m = _one_step([1.0, 2.0], SAM(rho=math.sqrt(257), adaptive=True), lr=0.01)
    assert torch.allclose(m.w.detach(), torch.tensor([1.0 - 0.02, 2.0 - 1.36]))


def test_the_perturbed_pass_leaves_bn_running_statistics_alone():
    plain = _one_step([1.0, 1.0], None, lr=0.1)
    sam = _one_step([1.0, 1.0], SAM(rho=1.0), lr=0.1)
    assert torch.equal(plain.bn.running_mean, sam.bn.running_mean)
    assert plain.bn.running_mean.item() == pytest.approx(0.1 * 100 / 255)
