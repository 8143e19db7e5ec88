"""L-inf PGD and PGD adversarial training (Madry et al., ICLR 2018), shared by the methods that need
adversarial examples of a model or an adversarially trained (robust) model: LC perturbs its poisons
against a robust surrogate (Turner et al.), which `train_surrogate(..., adversarial=...)` trains
through the shared trainer with `AdversarialTraining`."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bdcore.nn.trainer import StepInfo, TrainHook


def pgd_linf(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, step_size: float, steps: int, *,
             random_start: bool = False, gen: torch.Generator | None = None) -> torch.Tensor:
    """Untargeted L-inf PGD on images in [0, 1]: `steps` signed-gradient ascent steps of `step_size` on
    model's cross-entropy of (x, y), each projected onto the eps-ball around x and onto [0, 1].
    random_start: begin at a uniform point of the ball (drawn from gen), as adversarial training does."""
    x = x.detach()
    adv = x.clone()
    if random_start and steps > 0:
        u = torch.rand(x.shape, generator=gen, device=gen.device if gen is not None else x.device).to(x.device)
        adv = (x + (2 * u - 1) * eps).clamp(0.0, 1.0)
    for _ in range(steps):
        adv.requires_grad_(True)
        loss = F.cross_entropy(model(adv).float(), y)
        (grad,) = torch.autograd.grad(loss, adv)
        adv = adv.detach() + step_size * grad.sign()
        adv = torch.min(torch.max(adv, x - eps), x + eps).clamp(0.0, 1.0)
    return adv.detach()


class AdversarialTraining(TrainHook):
    """PGD adversarial training: every step trains on the PGD images (random start) of its batch
    instead of the batch itself. The examples are made with the model in eval mode (BatchNorm's
    running statistics are not moved by the attack's forward passes). eps, step_size in [0, 1] units."""

    def __init__(self, eps: float, step_size: float, steps: int) -> None:
        self.eps, self.step_size, self.steps = eps, step_size, steps

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, step: StepInfo) -> torch.Tensor:
        model.eval()
        adv = pgd_linf(model, x, y, self.eps, self.step_size, self.steps, random_start=True, gen=step.gen)
        model.train()
        return F.cross_entropy(model(adv).float(), y)
