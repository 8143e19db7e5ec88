"""FT-SAM: fine-tuning with (adaptive) sharpness-aware minimisation (Zhu et al., ICCV 2023).

The paper solves min_w max_{||T_w^-1 e|| <= rho} L(w + e) on the clean reserve, T_w = diag(|w|):
each step perturbs every weight by e = rho * T_w^2 g / ||T_w g|| (large weights, which the paper
links to backdoor neurons, move most), takes the gradient of the label-smoothed cross-entropy at
w + e, and steps SGD from w. The weight perturbation is the core's `SAM` trainer hook.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bdcore import SAM, Defense, DefenseInputs, DefenseOutput, StepInfo, TrainHook, accuracy_on, fine_tune

from bdb_defense_ft_sam.config import FTSAMConfig


def smoothed_cross_entropy(logits: torch.Tensor, y: torch.Tensor, smoothing: float) -> torch.Tensor:
    """Cross-entropy against 1 - s on the label and s / (C - 1) on each other class (mean over the batch)."""
    c = logits.shape[1]
    target = torch.full_like(logits, smoothing / (c - 1)).scatter_(1, y[:, None], 1.0 - smoothing)
    return -(target * F.log_softmax(logits.float(), dim=1)).sum(1).mean()


class SmoothedLoss(TrainHook):
    """The trainer's loss replaced by label-smoothed cross-entropy."""

    def __init__(self, smoothing: float) -> None:
        self.smoothing = smoothing

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, step: StepInfo) -> torch.Tensor:
        return smoothed_cross_entropy(model(x), y, self.smoothing)


class FTSAM(Defense):
    """Sharpness-aware fine-tuning of every weight on the clean reserve."""

    config: FTSAMConfig

    def run(self, inputs: DefenseInputs) -> DefenseOutput:
        c = self.config
        model = inputs.model
        val_before = accuracy_on(model, inputs.val)
        hooks = [SmoothedLoss(c.label_smoothing), SAM(c.rho, adaptive=c.adaptive, eta=c.eta)]
        fine_tune(model, inputs.reserve, inputs.recipe, self.ctx.seed, hooks=hooks, epochs=c.epochs, lr=c.lr,
                  momentum=c.momentum, batch_size=c.batch_size, weight_decay=c.weight_decay, augment=c.augment,
                  optimizer="sgd", schedule="cosine")
        return DefenseOutput(model=model, info={"val_acc_before": val_before,
                                                "val_acc_after": accuracy_on(model, inputs.val)})
