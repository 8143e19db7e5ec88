"""Contrastive and semi-supervised training pieces shared by training-time defenses (DBD, D-ST).

Everything runs through the one trainer: a model is wrapped (`Projected` adds a projection head
on the penultimate features, `LinearProbe` trains only the classification head on a frozen trunk)
and a `ContrastiveHook` replaces the loss with the contrastive loss of two augmented views. The
views are `bdcore.data.augmentation.simclr_augment`.

Trust is carried in the labels, so that hooks see it in every batch: a trusted sample keeps its
label c >= 0, an untrusted one is stored as -1 - c (`mark_untrusted`, `read_trust`).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from bdcore.data.augmentation import simclr_augment
from bdcore.nn.surgery import FeatureTap, classifier, collect_features
from bdcore.nn.trainer import StepInfo, TrainHook


def contrastive_loss(z1: torch.Tensor, z2: torch.Tensor, labels: torch.Tensor | None = None,
                     trusted: torch.Tensor | None = None, temperature: float = 0.5,
                     base_temperature: float | None = None, anchors: str = "all") -> torch.Tensor:
    """Contrastive loss of two views (rows of z1 and z2: L2-normalised embeddings of the same images).

    Each anchor's loss is -(t / t_base) times the mean, over its positives, of
    log(exp(z_a . z_p / t) / sum over every other embedding k of exp(z_a . z_k / t)).
    Positives: the other view of the same image (SimCLR, labels None); with labels, every
    embedding of the same label (SupCon); with labels and a `trusted` mask, same-label positives
    for trusted anchors only, the other view alone for untrusted ones (D-ST's semi-supervised
    contrastive loss). anchors: "all" (both views) or "one" (the first view only, as DBD's SimCLR).
    """
    n = z1.shape[0]
    z = torch.cat([z1, z2]).float()
    logits = z @ z.T / temperature
    eye = torch.eye(n, dtype=torch.bool, device=z.device)
    if labels is None:
        pos = eye
    else:
        pos = labels.view(-1, 1) == labels.view(1, -1)
        if trusted is not None:
            pos = torch.where(trusted.view(-1, 1).bool(), pos, eye)
    self_mask = torch.eye(2 * n, dtype=torch.bool, device=z.device)
    pos = pos.repeat(2, 2) & ~self_mask
    logits = logits.masked_fill(self_mask, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    mean_pos = log_prob.masked_fill(~pos, 0.0).sum(1) / pos.sum(1)
    loss = -(temperature / (base_temperature or temperature)) * mean_pos
    if anchors not in ("all", "one"):
        raise ValueError(f"anchors must be 'all' or 'one', got {anchors!r}")
    return loss[:n].mean() if anchors == "one" else loss.mean()


def mark_untrusted(y: torch.Tensor, untrusted: torch.Tensor) -> torch.Tensor:
    """Labels with the untrusted samples stored as -1 - label (trusted ones unchanged)."""
    u = untrusted.to(y.device).bool()
    return torch.where(u, -1 - y, y)


def read_trust(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(labels, trusted mask) of labels written by `mark_untrusted`."""
    trusted = y >= 0
    return torch.where(trusted, y, -1 - y), trusted


class Projected(nn.Module):
    """A model's penultimate features through a projection head (Linear-ReLU-Linear), L2-normalised.

    The wrapped model is trained through it (its classification head gets no gradient); the head
    is discarded afterwards.
    """

    def __init__(self, model: nn.Module, dim: int = 128, hidden: int | None = None) -> None:
        super().__init__()
        self.model = model
        fc = classifier(model)[1]
        self._fc = [fc]  # a list keeps it out of this module's parameters
        d = fc.in_features
        self.head = nn.Sequential(nn.Linear(d, hidden or d), nn.ReLU(inplace=True), nn.Linear(hidden or d, dim))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features (with gradients)."""
        with FeatureTap(self._fc[0], use_input=True, detach=False) as tap:
            self.model(x)
        return tap.value.flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.head(self.features(x)), dim=1)


class LinearProbe(nn.Module):
    """The model's classification head on its frozen trunk: the trunk always runs in eval mode
    without gradients, so training this module (with `params=probe.head_parameters()`) changes the
    head only, BatchNorm statistics included.

    With `mean` and `std` (or built by `standardized`), the head sees the trunk's features
    standardised, `(f - mean) / std`; `fold()` then writes that into the head, so the model alone
    computes what the probe did."""

    def __init__(self, model: nn.Module, mean: torch.Tensor | None = None, std: torch.Tensor | None = None) -> None:
        super().__init__()
        self.model = model
        self._fc = [classifier(model)[1]]
        self._scale = None if mean is None or std is None else (mean.detach().clone(), std.detach().clone())

    @classmethod
    @torch.no_grad()
    def standardized(cls, model: nn.Module, data, batch_size: int = 256) -> "LinearProbe":
        """A probe on features standardised by their mean and spread over `data`'s plain images (a TrainSet)."""
        feats = collect_features(model, classifier(model)[1], data.iter_batches(batch_size), use_input=True)
        return cls(model, feats.mean(0), feats.std(0) + 1e-6)

    def head_parameters(self) -> list[torch.Tensor]:
        """The classification head's parameters."""
        return list(self._fc[0].parameters())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fc = self._fc[0]
        self.model.eval()
        with torch.no_grad(), FeatureTap(fc, use_input=True) as tap:
            self.model(x)
        f = tap.value.flatten(1)
        if self._scale is not None:
            f = (f - self._scale[0]) / self._scale[1]
        return fc(f)

    @torch.no_grad()
    def fold(self) -> nn.Module:
        """Write the standardisation into the head (W / std, b - (W / std) @ mean; nothing without one) and
        return the model."""
        if self._scale is not None:
            mean, std = self._scale
            fc = self._fc[0]
            w = fc.weight / std
            fc.bias.sub_(w @ mean)
            fc.weight.copy_(w)
            self._scale = None
        return self.model


class ContrastiveHook(TrainHook):
    """Replace the loss by `contrastive_loss` of two SimCLR views of the batch (train a `Projected` model).

    supervised: read labels and trust from the batch labels (`read_trust`): trusted samples take
    same-label positives; otherwise the labels are ignored (SimCLR). Use with `augment=False`
    in the recipe: the views are this hook's augmentation.
    """

    def __init__(self, temperature: float = 0.5, base_temperature: float | None = None, supervised: bool = False,
                 anchors: str = "all", scale: Sequence[float] = (0.2, 1.0)) -> None:
        self.temperature, self.base_temperature = temperature, base_temperature
        self.supervised, self.anchors, self.scale = supervised, anchors, (float(scale[0]), float(scale[1]))
        self.hflip = True

    def on_train_start(self, model: nn.Module, trainset) -> None:
        self.hflip = trainset.hflip

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, step: StepInfo) -> torch.Tensor:
        v1 = simclr_augment(x, step.gen, self.hflip, self.scale)
        v2 = simclr_augment(x, step.gen, self.hflip, self.scale)
        z1, z2 = model(torch.cat([v1, v2])).chunk(2)
        labels = trusted = None
        if self.supervised:
            labels, trusted = read_trust(y)
        return contrastive_loss(z1, z2, labels, trusted, self.temperature, self.base_temperature, self.anchors)
