"""Loss-guided isolation: ABL's local gradient ascent (LGA), shared by the training-time defenses
that isolate suspected poison by its low training loss (ABL; NAB's detection stage).

A model trained with the loss sign(L - gamma) * L on the batch loss L holds L near gamma: the
samples it still fits far below gamma, fastest-learnt, are the poisoned ones (a trigger is an easy
feature). The lowest-loss share of the training set is isolated.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bdcore.config import TrainRecipe
from bdcore.data.trainset import TrainSet
from bdcore.nn.trainer import TrainHook


def lga_loss(loss: torch.Tensor, gamma: float) -> torch.Tensor:
    """The LGA objective sign(L - gamma) * L: descent above gamma, ascent below it."""
    return torch.sign(loss - gamma) * loss


class LGA(TrainHook):
    """Replace the batch cross-entropy L by sign(L - gamma) * L."""

    def __init__(self, gamma: float) -> None:
        self.gamma = gamma

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, step: Any) -> torch.Tensor:
        return lga_loss(F.cross_entropy(model(x), y), self.gamma)


def lowest_share(values: torch.Tensor, ratio: float) -> torch.Tensor:
    """Bool mask of the max(1, round(ratio * n)) smallest values (ties broken by index)."""
    k = max(1, int(round(ratio * len(values))))
    mask = torch.zeros(len(values), dtype=torch.bool)
    mask[torch.sort(values, stable=True).indices[:k]] = True
    return mask


def lga_isolate(model: nn.Module, data: TrainSet, recipe: TrainRecipe, seed: int, *, gamma: float, epochs: int,
                ratio: float, lr: float | None = None, batch_size: int = 512,
                augment: bool | None = None, schedule: str = "constant",
                train_batch_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Train `model` in place with LGA for `epochs` (learning rate `lr`, default the recipe's, on
    `schedule`, constant unless told), then isolate the `ratio` share of `data` with the lowest loss
    under it.

    augment: random crop/flip during the LGA epochs (default: the recipe's). The reference trains its
    LGA stage (ABL, NAB) on the plain images. train_batch_size: the LGA mini-batch (default the
    recipe's); batch_size: the batch of the loss measurement.

    Returns (isolated mask, per-sample losses), both on the CPU in `data`'s order.
    """
    from bdcore.api.defense import fine_tune, sample_losses

    optional = {"lr": lr, "augment": augment, "batch_size": train_batch_size}  # None: the recipe's
    overrides: dict[str, Any] = {"epochs": epochs, "schedule": schedule,
                                 **{k: v for k, v in optional.items() if v is not None}}
    fine_tune(model, data, recipe, seed, hooks=[LGA(gamma)], **overrides)
    losses = sample_losses(model, data, batch_size)
    return lowest_share(losses, ratio), losses
