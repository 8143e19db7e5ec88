"""The sample-distinguishment (SD) module of Chen, Wu & Wang, NeurIPS 2022, shared by D-BR and D-ST.

A model trained briefly on the poisoned set maps poisoned samples by their trigger; a rotation
plus translation breaks the trigger, so a poisoned sample's features move far more than a clean
sample's. The FCT metric (feature consistency towards transformations) is the mean squared
distance between the penultimate features of x and of a transformed x; the highest FCT values
are suspected poison, the lowest trusted clean, the rest uncertain.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from bdcore.config import TrainRecipe
from bdcore.data.augmentation import rotate_translate
from bdcore.nn.surgery import FeatureTap, classifier
from bdcore.data.trainset import TrainSet
from bdcore.nn.trainer import StepInfo, TrainHook


def fct(f: torch.Tensor, f_t: torch.Tensor) -> torch.Tensor:
    """FCT of each row: the mean over feature dimensions of (f - f_t)^2."""
    return (f.flatten(1).float() - f_t.flatten(1).float()).pow(2).mean(1)


@torch.no_grad()
def fct_scores(model: nn.Module, data: TrainSet, seed: int, batch_size: int = 256, degrees: float = 180.0,
               translate: float = 0.2) -> torch.Tensor:
    """FCT of every sample of `data` (on the CPU, in order): penultimate features of x against those
    of `rotate_translate(x)` (one transformation per sample, drawn from `seed`); eval mode."""
    gen = torch.Generator().manual_seed(seed)
    model.eval()
    fc = classifier(model)[1]
    out = []
    with FeatureTap(fc, use_input=True) as tap:
        for x, _ in data.iter_batches(batch_size):
            model(x)
            f = tap.value
            model(rotate_translate(x, gen, degrees, translate))
            out.append(fct(f, tap.value).cpu())
    return torch.cat(out) if out else torch.empty(0)


def sensitivity_split(scores: torch.Tensor, clean_ratio: float, poison_ratio: float
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """(clean, poison) bool masks: the int(clean_ratio * n) lowest scores and the int(poison_ratio * n)
    highest (ties broken by index); the rest is neither (uncertain)."""
    n = len(scores)
    order = torch.sort(scores.cpu(), stable=True).indices
    clean = torch.zeros(n, dtype=torch.bool)
    poison = torch.zeros(n, dtype=torch.bool)
    kc, kp = int(clean_ratio * n), int(poison_ratio * n)
    clean[order[:kc]] = True
    if kp:
        poison[order[n - kp:]] = True
    return clean, poison


def center_similarity(features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cosine similarity between the class centres of a batch (the mean feature of every label
    present), over all ordered pairs of centres with the diagonal counted as 0 (the SD module's
    fine-tuning loss; lowering it pulls the classes apart)."""
    classes = labels.unique()
    centres = torch.stack([features[labels == c].mean(0) for c in classes])
    centres = torch.nn.functional.normalize(centres.float(), dim=1)
    sim = centres @ centres.T
    return sim.masked_fill(torch.eye(len(classes), dtype=torch.bool, device=sim.device), 0.0).mean()


class CenterSeparation(TrainHook):
    """Replace the loss by `center_similarity` of the batch's penultimate features."""

    def __init__(self) -> None:
        self._fc: nn.Module | None = None

    def on_train_start(self, model: nn.Module, trainset) -> None:
        self._fc = classifier(model)[1]

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, step: StepInfo) -> torch.Tensor:
        with FeatureTap(self._fc, use_input=True, detach=False) as tap:
            model(x)
        return center_similarity(tap.value.flatten(1), y)


@dataclass
class Separation:
    """What the SD module found: FCT per sample and the trusted-clean / suspected-poison masks."""

    scores: torch.Tensor
    clean: torch.Tensor
    poison: torch.Tensor
    probe: nn.Module


def distinguish(new_model: Callable[[], nn.Module], data: TrainSet, recipe: TrainRecipe, seed: int, *,
                warm_epochs: int = 2, intra_epochs: int = 10, clean_ratio: float = 0.2, poison_ratio: float = 0.05,
                lr: float | None = None, degrees: float = 180.0, translate: float = 0.2,
                batch_size: int = 256) -> Separation:
    """The SD module: train a fresh model `warm_epochs` on `data` with cross-entropy and no
    augmentation, fine-tune it `intra_epochs` with `CenterSeparation` (no augmentation), score every
    sample by FCT and split: the lowest `clean_ratio` trusted clean, the highest `poison_ratio`
    suspected poison. lr: of both stages, constant (default: the recipe's)."""
    from bdcore.nn.trainer import train

    probe = new_model()
    over = {"augment": False, "schedule": "constant", "lr": lr or recipe.lr}
    if warm_epochs:
        train(probe, data, recipe.model_copy(update={**over, "epochs": warm_epochs}), seed=seed)
    if intra_epochs:
        train(probe, data, recipe.model_copy(update={**over, "epochs": intra_epochs}), seed=seed + 1,
              hooks=[CenterSeparation()])
    scores = fct_scores(probe, data, seed + 2, batch_size, degrees, translate)
    clean, poison = sensitivity_split(scores, clean_ratio, poison_ratio)
    return Separation(scores, clean, poison, probe)
