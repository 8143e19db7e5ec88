"""ABL: Anti-Backdoor Learning (Li et al., NeurIPS 2021).

Backdoor samples are learnt much faster than clean ones. Stage 1 trains a fresh model with the
local gradient ascent (LGA) loss sign(L - gamma) * L on the batch loss L: whenever the loss falls
below gamma the step ascends, so clean samples hover around gamma while the backdoor samples, whose
loss still drops fast, end far below it. The `isolation_ratio` share of the training set with the
lowest loss is isolated as poisoned. Stage 2 keeps training the model normally on the other
samples; stage 3 unlearns the isolated ones by gradient ascent on their cross-entropy at a small
learning rate, which breaks the trigger -> target link.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bdcore import Defense, DefenseInputs, DefenseOutput, TrainHook, accuracy_on, fine_tune, lga_isolate

from bdb_defense_abl.config import ABLConfig


class Ascent(TrainHook):
    """Gradient ascent: the negated cross-entropy."""

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, step) -> torch.Tensor:
        return -F.cross_entropy(model(x), y)


class ABL(Defense):
    """LGA isolation, training on the rest, unlearning of the isolated samples."""

    config: ABLConfig

    def run(self, inputs: DefenseInputs) -> DefenseOutput:
        c, seed, train = self.config, self.ctx.seed, inputs.train
        lr = c.lr or inputs.recipe.lr
        torch.manual_seed(seed)
        model = inputs.new_model()
        lga_recipe = inputs.recipe
        if c.lga_weight_decay is not None:
            lga_recipe = lga_recipe.model_copy(update={"weight_decay": c.lga_weight_decay})
        if c.lga_nesterov:
            lga_recipe = lga_recipe.model_copy(update={"nesterov": True})
        isolated, losses = lga_isolate(model, train, lga_recipe, seed, batch_size=c.batch_size, **c.lga_options())
        info = {"isolated": int(isolated.sum()), "isolation_loss_max": float(losses[isolated].max()),
                "median_loss": float(losses.median()), "val_acc_isolation": accuracy_on(model, inputs.val)}
        if c.finetune_epochs:
            fine_tune(model, train.subset(~isolated), inputs.recipe, seed + 1, epochs=c.finetune_epochs, lr=lr,
                      schedule="cosine")
        info["val_acc_finetuned"] = accuracy_on(model, inputs.val)
        if c.unlearn_epochs:
            fine_tune(model, train.subset(isolated), inputs.recipe, seed + 2, hooks=[Ascent()],
                      epochs=c.unlearn_epochs, lr=c.unlearn_lr, batch_size=c.unlearn_batch_size,
                      schedule="constant", augment=c.unlearn_augment)
        info["val_acc_unlearned"] = accuracy_on(model, inputs.val)
        info["flag_count"] = int(isolated.sum())
        return DefenseOutput(model=model, flagged=isolated, scores=-losses, info=info)
