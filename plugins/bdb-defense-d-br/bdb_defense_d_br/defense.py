"""D-BR: backdoor removal by the sensitivity of poisoned samples (Chen, Wu & Wang, NeurIPS 2022).

Sample distinguishment (SD, `bdcore.distinguish`): a probe model trained briefly on the poisoned
set and fine-tuned to pull the class centres apart maps poisoned samples by their trigger; under a
rotation plus translation the trigger stops working, so a poisoned sample's features move much
more than a clean one's. The FCT metric measures that move; the highest FCT values are suspected
poison, the lowest trusted clean. Backdoor removal (BR): on the backdoored model, each round
unlearns the suspected poison (gradient ascent on its cross-entropy) for one epoch, then relearns
the trusted clean samples (cross-entropy) for one epoch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bdcore import Defense, DefenseInputs, DefenseOutput, TrainHook, accuracy_on, distinguish, fine_tune

from bdb_defense_d_br.config import DBRConfig


class Ascent(TrainHook):
    """Gradient ascent: the negated cross-entropy."""

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, step) -> torch.Tensor:
        return -F.cross_entropy(model(x), y)


class DBR(Defense):
    """FCT separation of the poisoned training set, then alternating unlearning and relearning."""

    config: DBRConfig
    needs_train_set = True

    def run(self, inputs: DefenseInputs) -> DefenseOutput:
        c, seed, train = self.config, self.ctx.seed, inputs.train
        torch.manual_seed(seed)
        sep = distinguish(inputs.new_model, train, inputs.recipe, seed, warm_epochs=c.warm_epochs,
                          intra_epochs=c.intra_epochs, clean_ratio=c.clean_ratio, poison_ratio=c.poison_ratio,
                          lr=c.sd_lr, degrees=c.degrees, translate=c.translate, batch_size=c.score_batch_size)
        clean_set, poison_set = train.subset(sep.clean), train.subset(sep.poison)
        model = inputs.model
        info = {"clean": int(sep.clean.sum()), "poison": int(sep.poison.sum()),
                "fct_median": float(sep.scores.median()), "probe_val_acc": accuracy_on(sep.probe, inputs.val),
                "val_acc_before": accuracy_on(model, inputs.val)}
        over = {"lr": c.lr, "batch_size": c.batch_size, "schedule": "constant"}
        for r in range(c.epochs):
            fine_tune(model, poison_set, inputs.recipe, seed + 10 + 2 * r, hooks=[Ascent()], epochs=1, **over)
            fine_tune(model, clean_set, inputs.recipe, seed + 11 + 2 * r, epochs=1, **over)
        info["val_acc"] = accuracy_on(model, inputs.val)
        info["flag_count"] = int(sep.poison.sum())
        return DefenseOutput(model=model.eval(), flagged=sep.poison, scores=sep.scores, info=info)
