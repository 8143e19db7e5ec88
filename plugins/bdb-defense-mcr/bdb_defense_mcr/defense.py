"""MCR: Mode Connectivity Repair (Zhao et al., ICLR 2020).

Two models of the same architecture are connected by a quadratic Bezier curve in weight space,

    phi(t) = (1 - t)^2 w0 + 2 t (1 - t) theta + t^2 w1,     t in [0, 1],

with the endpoints fixed (w0 the backdoored model, w1 a copy fine-tuned on the clean reserve) and
the bend theta trained to minimise E_{t ~ U(0, 1)} L(phi(t)) on the clean reserve. Points on the
path a little away from the backdoored end keep clean accuracy but lose the backdoor. The model
at t is evaluated by substituting weights (torch.func.functional_call, any backbone); its BN
statistics are re-estimated on the reserve, as for any new point of the curve.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from bdcore import (Defense, DefenseInputs, DefenseOutput, StepInfo, TrainHook, TrainSet, accuracy_on, fine_tune,
                    recalibrate_bn)

from bdb_defense_mcr.config import MCRConfig


def bezier(w0: torch.Tensor, bend: torch.Tensor, w1: torch.Tensor, t: float) -> torch.Tensor:
    """The quadratic Bezier curve through control points w0, bend, w1 at t."""
    return (1 - t) ** 2 * w0 + 2 * t * (1 - t) * bend + t ** 2 * w1


class BezierCurve(nn.Module):
    """The weights of `base` along a quadratic Bezier curve between two fixed endpoints; the bend is trainable."""

    def __init__(self, base: nn.Module, end0: nn.Module, end1: nn.Module) -> None:
        super().__init__()
        self.base = base
        self.names = [n for n, _ in base.named_parameters()]
        p0, p1 = dict(end0.named_parameters()), dict(end1.named_parameters())
        self.end0 = nn.ParameterList([nn.Parameter(p0[n].detach().clone(), requires_grad=False) for n in self.names])
        self.end1 = nn.ParameterList([nn.Parameter(p1[n].detach().clone(), requires_grad=False) for n in self.names])
        self.bend = nn.ParameterList([nn.Parameter((a + b) / 2) for a, b in zip(self.end0, self.end1)])
        for p in base.parameters():
            p.requires_grad_(False)

    def weights(self, t: float) -> dict[str, torch.Tensor]:
        """The parameters of the model at t (name -> tensor)."""
        return {n: bezier(a, b, c, t) for n, a, b, c in zip(self.names, self.end0, self.bend, self.end1)}

    def forward(self, x: torch.Tensor, t: float) -> torch.Tensor:
        return torch.func.functional_call(self.base, self.weights(t), (x,))


class RandomPointLoss(TrainHook):
    """Cross-entropy of the curve at a uniformly random t per mini-batch."""

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, step: StepInfo) -> torch.Tensor:
        t = float(torch.rand((), generator=step.gen))
        return F.cross_entropy(model(x, t), y)


@torch.no_grad()
def point_model(curve: BezierCurve, model: nn.Module, t: float, data: TrainSet, batch_size: int) -> nn.Module:
    """Load the curve's weights at t into `model` and re-estimate its BN statistics on `data` (no augmentation)."""
    params = dict(model.named_parameters())
    for n, w in curve.weights(t).items():
        params[n].copy_(w)
    return recalibrate_bn(model, data, batch_size)


class MCR(Defense):
    """Fine-tune an endpoint, train the Bezier bend on the reserve, return the model at t."""

    config: MCRConfig

    def run(self, inputs: DefenseInputs) -> DefenseOutput:
        c = self.config
        model = inputs.model
        data = inputs.reserve_fit if c.selection == "val" else inputs.reserve
        val_before = accuracy_on(model, inputs.val)
        common = dict(momentum=c.momentum, weight_decay=c.weight_decay, batch_size=c.batch_size, augment=c.augment,
                      optimizer="sgd", schedule="cosine")
        tuned = fine_tune(copy.deepcopy(model), data, inputs.recipe, self.ctx.seed, epochs=c.ft_epochs, lr=c.ft_lr,
                          **common)
        val_tuned = accuracy_on(tuned, inputs.val)
        curve = BezierCurve(copy.deepcopy(model), model, tuned)
        fine_tune(curve, data, inputs.recipe, self.ctx.seed, hooks=[RandomPointLoss()], params=list(curve.bend),
                  epochs=c.curve_epochs, lr=c.curve_lr, **common)
        info: dict = {"val_acc_before": val_before, "val_acc_finetuned": val_tuned}
        t = c.t
        if c.selection == "val":
            floor = max(val_before, val_tuned) - c.max_val_drop
            trials = {}
            t = 0.0
            for cand in sorted(c.val_ts):
                acc = accuracy_on(point_model(curve, model, cand, data, c.batch_size), inputs.val)
                trials[str(cand)] = acc
                if acc >= floor:
                    t = cand
            info["val_trials"] = trials
        point_model(curve, model, t, data, c.batch_size)
        info.update({"t": t, "val_acc_after": accuracy_on(model, inputs.val)})
        return DefenseOutput(model=model, info=info)
