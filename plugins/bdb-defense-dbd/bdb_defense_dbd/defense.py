"""DBD: Backdoor Defense via Decoupling the Training Process (Huang, Li, Wu, Qin & Ren, ICLR 2022).

End-to-end supervised training lets poisoned samples cluster in feature space. DBD decouples it:

1. the backbone (the victim architecture up to its classification head, with a projection head)
   learns by SimCLR on the training images without labels, so the trigger cannot be tied to the
   target label;
2. the classification head learns on the frozen backbone with symmetric cross-entropy (robust to
   the poisoned labels, which now disagree with the features);
3. each epoch the `epsilon` share of samples with the lowest SCE loss keep their labels, the rest
   lose them, and the whole model is fine-tuned with MixMatch.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bdcore import (ContrastiveHook, Defense, DefenseInputs, DefenseOutput, LinearProbe, Projected, TrainHook,
                    TrainSet, accuracy_on, augment, mark_untrusted, read_trust, recalibrate_bn, train)

from bdb_defense_dbd.config import DBDConfig


def symmetric_cross_entropy(logits: torch.Tensor, y: torch.Tensor, alpha: float, beta: float,
                            reduction: str = "mean") -> torch.Tensor:
    """alpha * CE + beta * RCE, RCE = -sum_k p_k log q_k with p = softmax clamped to [1e-7, 1] and q the
    one-hot label clamped to [1e-4, 1] (so RCE = -log(1e-4) * (sum of p over the wrong classes))."""
    ce = F.cross_entropy(logits.float(), y, reduction="none")
    p = F.softmax(logits.float(), dim=1).clamp(1e-7, 1.0)
    q = F.one_hot(y, logits.shape[1]).float().clamp(1e-4, 1.0)
    loss = alpha * ce - beta * (p * q.log()).sum(1)
    return loss.mean() if reduction == "mean" else loss


def sharpen(p: torch.Tensor, t: float) -> torch.Tensor:
    """MixMatch's temperature sharpening p^(1/t), renormalised per row."""
    q = p.pow(1.0 / t)
    return q / q.sum(1, keepdim=True)


class SCE(TrainHook):
    """Replace the loss by symmetric cross-entropy."""

    def __init__(self, alpha: float, beta: float) -> None:
        self.alpha, self.beta = alpha, beta

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, step) -> torch.Tensor:
        return symmetric_cross_entropy(model(x), y, self.alpha, self.beta)


@torch.no_grad()
def sce_losses(model: nn.Module, data: TrainSet, labels: torch.Tensor, alpha: float, beta: float,
               batch_size: int) -> torch.Tensor:
    """Per-sample SCE of `data`'s images against `labels` (eval mode, no augmentation), on the CPU."""
    model.eval()
    out = []
    for s in range(0, len(data), batch_size):
        idx = torch.arange(s, min(s + batch_size, len(data)), device=data.device)
        x, _ = data.batch(idx)
        out.append(symmetric_cross_entropy(model(x), labels[idx], alpha, beta, reduction="none").cpu())
    return torch.cat(out)


def lowest(values: torch.Tensor, share: float, groups: torch.Tensor | None = None) -> torch.Tensor:
    """Bool mask of the int(share * n) smallest values (ties broken by index); with `groups`, of the
    int(share * n_g) smallest within each group g."""
    mask = torch.zeros(len(values), dtype=torch.bool)
    if groups is None:
        mask[torch.sort(values, stable=True).indices[:int(share * len(values))]] = True
        return mask
    groups = groups.cpu()
    for g in torch.unique(groups):
        idx = torch.nonzero(groups == g).flatten()
        mask[idx[torch.sort(values[idx], stable=True).indices[:int(share * len(idx))]]] = True
    return mask


class MixMatch(TrainHook):
    """MixMatch on batches that mix labelled and unlabelled samples (labels as `mark_untrusted` writes them).

    Labelled samples get one standard augmentation, unlabelled ones K; the guessed label of an
    unlabelled sample is the sharpened mean prediction over its K views; all of them are mixed up
    (lambda' = max(lambda, 1 - lambda)) and the loss is soft cross-entropy on the labelled part
    plus lambda_u (ramped up linearly) times the squared error of the unlabelled predictions.
    After each epoch the labelled share is re-selected by SCE loss (`remine`).
    """

    def __init__(self, c: DBDConfig, num_classes: int, labels: torch.Tensor, data: TrainSet, epochs: int) -> None:
        self.c, self.num_classes, self.labels, self.data, self.epochs = c, num_classes, labels, data, epochs
        self.hflip, self.steps_per_epoch = data.hflip, 1
        self.labelled = torch.ones(len(data), dtype=torch.bool)

    def remine(self, model: nn.Module) -> torch.Tensor:
        """Re-select the labelled share by SCE loss under `model` and write it into the set's labels."""
        c = self.c
        if c.recalibrate_bn:
            recalibrate_bn(model, self.data, c.score_batch_size)
        losses = sce_losses(model, self.data, self.labels, c.sce_alpha, c.sce_beta, c.score_batch_size)
        self.labelled = lowest(losses, c.epsilon, self.labels if c.per_class else None)
        self.data.y.copy_(mark_untrusted(self.labels, ~self.labelled))
        return losses

    def on_train_start(self, model: nn.Module, trainset) -> None:
        self.steps_per_epoch = max(1, math.ceil(len(trainset) / self.c.semi_batch_size))

    def on_epoch_end(self, model: nn.Module, epoch: int) -> None:
        self.remine(model)
        model.train()

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, step) -> torch.Tensor:
        c, gen = self.c, step.gen
        labels, trusted = read_trust(y)
        xl = augment(x[trusted], gen, self.hflip)
        xu = x[~trusted]
        views = [augment(xu, gen, self.hflip) for _ in range(c.augmentations)]
        with torch.no_grad():
            guess = torch.stack([F.softmax(model(v).float(), 1) for v in views]).mean(0) if len(xu) else \
                xu.new_zeros(0, self.num_classes)
            guess = sharpen(guess, c.sharpen_temperature) if len(xu) else guess
        inputs = torch.cat([xl, *views])
        targets = torch.cat([F.one_hot(labels[trusted], self.num_classes).float(), *[guess] * len(views)])
        lam = float(np.random.default_rng(int(torch.randint(2**31, (1,), generator=gen))).beta(c.mixup_alpha,
                                                                                                   c.mixup_alpha))
        lam = max(lam, 1 - lam)
        perm = torch.randperm(len(inputs), generator=gen).to(inputs.device)
        mixed = lam * inputs + (1 - lam) * inputs[perm]
        mixed_t = lam * targets + (1 - lam) * targets[perm]
        logits = model(mixed).float()
        nl = len(xl)
        zero = logits.sum() * 0
        lx = -(F.log_softmax(logits[:nl], 1) * mixed_t[:nl]).sum(1).mean() if nl else zero
        lu = (F.softmax(logits[nl:], 1) - mixed_t[nl:]).pow(2).mean() if len(xu) else zero
        ramp = min(1.0, step.step / self.steps_per_epoch / c.rampup_epochs) if c.rampup_epochs else 1.0
        return lx + c.lambda_u * ramp * lu


class DBD(Defense):
    """SimCLR backbone, SCE warm-up of the head on the frozen backbone, MixMatch fine-tuning."""

    config: DBDConfig

    def run(self, inputs: DefenseInputs) -> DefenseOutput:
        c, seed, data = self.config, self.ctx.seed, inputs.train
        torch.manual_seed(seed)
        model = inputs.new_model()
        stats = train(Projected(model, c.projection_dim), data, inputs.recipe.model_copy(update={
            "epochs": c.simclr_epochs, "lr": c.simclr_lr, "batch_size": c.simclr_batch_size, "optimizer": "sgd",
            "momentum": 0.9, "weight_decay": c.simclr_weight_decay, "schedule": "constant", "augment": False}),
            seed=seed + 1, hooks=[ContrastiveHook(c.temperature, anchors="one")])
        info = {"simclr_loss": stats.final_loss}

        adam = {"optimizer": "adam", "lr": c.lr, "weight_decay": 0.0, "schedule": "constant"}
        probe = LinearProbe(model)
        train(probe, data, inputs.recipe.model_copy(update={**adam, "lr": c.warmup_lr, "epochs": c.warmup_epochs,
                                                           "batch_size": c.warmup_batch_size, "augment": True}),
              seed=seed + 2, params=probe.head_parameters(), hooks=[SCE(c.sce_alpha, c.sce_beta)])
        info["warmup_val_acc"] = accuracy_on(model, inputs.val)

        labels = data.y.clone()
        semi_set = TrainSet(data.x, labels.clone(), hflip=data.hflip, device=data.device)
        mixmatch = MixMatch(c, self.ctx.num_classes, labels, semi_set, c.semi_epochs)
        mixmatch.remine(model)
        train(model, semi_set, inputs.recipe.model_copy(update={**adam, "epochs": c.semi_epochs,
                                                               "batch_size": c.semi_batch_size, "augment": False}),
              seed=seed + 3, hooks=[mixmatch])
        losses = sce_losses(model, data, labels, c.sce_alpha, c.sce_beta, c.score_batch_size)
        distrusted = ~lowest(losses, c.epsilon, labels if c.per_class else None)
        info["val_acc"] = accuracy_on(model, inputs.val)
        info["flag_count"] = int(distrusted.sum())
        return DefenseOutput(model=model.eval(), flagged=distrusted, scores=losses, info=info)
