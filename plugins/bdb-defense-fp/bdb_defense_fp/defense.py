"""Fine-Pruning: prune the channels of the last convolutional layer that stay dormant on clean
inputs, as long as clean (validation) accuracy holds, then fine-tune on the clean reserve.

Where we prune. The pruned units are the input features of the classification head. In the
built-in models and timm/torchvision CNNs this is the globally average-pooled output of the last
convolutional stage (after its BN and ReLU), one unit per channel of the last conv layer, and the
head's input weights are the only path from a channel to the output. Zeroing a channel's column of
the head therefore removes that channel exactly, in plain and in residual networks alike (zeroing
the last conv's kernel would leave a ResNet's shortcut path alive). The mean of a pooled unit over
the reserve is the channel's mean activation, the paper's pruning criterion.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from bdcore import Defense, DefenseInputs, DefenseOutput, accuracy_on
from bdcore import classifier, penultimate
from bdcore import TrainSet
from bdcore import StepInfo, TrainHook, train

from bdb_defense_fp.config import FPConfig


def _batches(data: TrainSet, batch_size: int = 512):
    return data.iter_batches(batch_size)


def pruning_schedule(n_channels: int, step_ratio: float, max_ratio: float) -> list[int]:
    """Pruned-channel counts to try, in order: step, 2*step, ... (step = step_ratio of the layer, >= 1)."""
    step = max(1, round(step_ratio * n_channels))
    limit = min(n_channels - 1, math.floor(max_ratio * n_channels))
    return list(range(step, limit + 1, step))


@torch.no_grad()
def head_accuracy(head: nn.Linear, feats: torch.Tensor, y: torch.Tensor, pruned: torch.Tensor) -> float:
    """Accuracy of the head on fixed penultimate features with the `pruned` input units removed."""
    w = head.weight.clone()
    w[:, pruned] = 0
    logits = feats.to(w.dtype) @ w.t()
    if head.bias is not None:
        logits = logits + head.bias
    return float((logits.argmax(1) == y).float().mean()) if len(y) else 0.0


def choose_pruning(head: nn.Linear, order: torch.Tensor, val_feats: torch.Tensor, val_y: torch.Tensor,
                   counts: list[int], acc_drop: float) -> tuple[int, float, float, list[tuple[int, float]]]:
    """Prune in `order`, stepping through `counts`; stop before validation accuracy falls below
    (1 - acc_drop) x the unpruned accuracy. Returns (pruned count, unpruned acc, pruned acc, trace)."""
    base = head_accuracy(head, val_feats, val_y, order[:0])
    floor = (1.0 - acc_drop) * base
    chosen, chosen_acc, trace = 0, base, []
    for n in counts:
        acc = head_accuracy(head, val_feats, val_y, order[:n])
        trace.append((n, acc))
        if acc < floor:
            break
        chosen, chosen_acc = n, acc
    return chosen, base, chosen_acc, trace


class KeepPruned(TrainHook):
    """Re-zeroes the pruned input columns of the head after every optimiser step."""

    def __init__(self, head: nn.Linear, pruned: torch.Tensor) -> None:
        self.head, self.pruned = head, pruned

    def after_step(self, model: nn.Module, step: StepInfo) -> None:
        with torch.no_grad():
            self.head.weight[:, self.pruned.to(self.head.weight.device)] = 0


class FinePruning(Defense):
    """Prune dormant last-layer channels (validation-bounded), then fine-tune with them held at zero."""

    config: FPConfig

    def run(self, inputs: DefenseInputs) -> DefenseOutput:
        c = self.config
        model = inputs.model.eval()
        head_name, head = classifier(model)
        fit = inputs.reserve_fit  # the stop is chosen on the validation split: fit on the rest
        reserve_feats = penultimate(model, _batches(fit))
        mean_act = reserve_feats.float().mean(0)
        order = torch.argsort(mean_act, stable=True).to(head.weight.device)
        val_feats = penultimate(model, _batches(inputs.val))
        val_y = inputs.val.y.to(val_feats.device)
        n_units = head.in_features
        counts = pruning_schedule(n_units, c.step_ratio, c.max_ratio)
        n, acc_base, acc_pruned, trace = choose_pruning(head, order, val_feats, val_y, counts, c.acc_drop)
        pruned = order[:n].clone()
        with torch.no_grad():
            head.weight[:, pruned] = 0
        info = {
            "layer": f"{head_name} (input units = last conv channels)",
            "channels": n_units,
            "step": counts[0] if counts else 0,
            "pruned": n,
            "pruned_ratio": n / n_units,
            "val_acc_unpruned": acc_base,
            "val_acc_pruned": acc_pruned,
            "stopped_at": trace[-1][0] if trace else 0,
            "stopped_acc": trace[-1][1] if trace else acc_base,
        }
        if c.epochs > 0:
            recipe = inputs.recipe.model_copy(update={
                "epochs": c.epochs, "lr": c.lr, "batch_size": c.batch_size, "weight_decay": c.weight_decay,
                "augment": c.augment, "optimizer": "sgd", "schedule": "cosine",
            })
            train(model, fit, recipe, seed=self.ctx.seed, hooks=[KeepPruned(head, pruned)])
        info["val_acc_after"] = accuracy_on(model, inputs.val)
        return DefenseOutput(model=model.eval(), info=info)
