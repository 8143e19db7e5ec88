"""Neural Cleanse: reverse-engineer a trigger per class, flag small-norm outliers, unlearn them."""

from __future__ import annotations

import torch

from bdcore import Defense, DefenseInputs, DefenseOutput, accuracy_on
from bdcore import anomaly_index, flag_outliers, median, reverse_engineer, stamp
from bdcore import StepInfo, TrainHook, train

from bdb_defense_nc.config import NCConfig


class StampReversedTriggers(TrainHook):
    """Stamps a fixed share of every batch with one of the given triggers, keeping the true labels.

    Batches come in random order, so the first `share` of each batch is a random draw; each of
    those samples gets one of the triggers picked at random (seeded by the trainer's generator).
    """

    def __init__(self, masks: torch.Tensor, patterns: torch.Tensor, share: float) -> None:
        self.masks, self.patterns, self.share = masks, patterns, share

    def on_batch(self, x: torch.Tensor, y: torch.Tensor, step: StepInfo) -> tuple[torch.Tensor, torch.Tensor]:
        n = round(self.share * len(x))
        if n == 0:
            return x, y
        pick = torch.randint(0, len(self.masks), (n,), generator=step.gen).to(self.masks.device)
        x = x.clone()
        x[:n] = stamp(x[:n], self.masks[pick], self.patterns[pick])
        return x, y


class NeuralCleanse(Defense):
    """Detect the target class(es) by their abnormally small reversed triggers, then unlearn them."""

    config: NCConfig

    def run(self, inputs: DefenseInputs) -> DefenseOutput:
        c = self.config
        model = inputs.model
        rev = reverse_engineer(model, inputs.reserve, range(self.ctx.num_classes), c, seed=self.ctx.seed,
                               report=self.report)
        index = anomaly_index(rev.norms)
        flagged = flag_outliers(rev.norms, c.anomaly_threshold).nonzero().flatten().tolist()
        below = rev.norms < median(rev.norms)
        info = {
            "norms": [round(float(v), 4) for v in rev.norms],
            "anomaly_index": [round(float(v), 4) for v in index],
            "flagged": flagged,
            # the detection statistic: the largest index among classes below the median norm
            "max_anomaly_index": round(float(index[below].max()), 4) if bool(below.any()) else 0.0,
            "trigger_success": [round(float(v), 4) for v in rev.success],
            "trigger_found": [bool(v) for v in rev.found],
            "reverse_epochs": [int(v) for v in rev.epochs],
            "val_acc_before": accuracy_on(model, inputs.val),
        }
        if not flagged:
            info["val_acc_after"] = info["val_acc_before"]
            info["unchanged"] = f"no class's anomaly index exceeds {c.anomaly_threshold}: no trigger to unlearn"
            return DefenseOutput(model=model, info=info)
        hook = StampReversedTriggers(rev.masks[flagged], rev.patterns[flagged], c.unlearn_share)
        recipe = inputs.recipe.model_copy(update={
            "epochs": c.unlearn_epochs, "lr": c.unlearn_lr, "batch_size": c.unlearn_batch_size,
            "augment": c.augment, "optimizer": "sgd", "schedule": "cosine",
        })
        train(model, inputs.reserve, recipe, seed=self.ctx.seed, hooks=[hook],
              progress=self.training_progress(f"unlearning {len(flagged)} reversed trigger(s)"))
        info["val_acc_after"] = accuracy_on(model, inputs.val)
        return DefenseOutput(model=model, info=info)
