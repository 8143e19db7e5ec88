"""Adversarial Weight Masking: a min-max game between a universal trigger and a soft weight mask.

Inner step: with the mask fixed, recover the universal trigger (mask-and-pattern, |m|_1 bounded)
that maximises the masked model's loss on the true labels (`bdcore.worst_case_trigger`).
Outer step: with the trigger fixed, one epoch of Adam on the weight mask M in [0, 1] (one entry
per conv weight) minimising alpha * CE(f(x; M * theta), y) + (1 - alpha) * CE(f(x'; M * theta), y)
+ gamma * |M|_1, clipping M to [0, 1] after every step. Finally theta <- M * theta.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from bdcore import augment
from bdcore import Defense, DefenseInputs, DefenseOutput, accuracy_on
from bdcore import CONV_TYPES, named_layers
from bdcore import TrainSet
from bdcore import frozen, stamp, worst_case_trigger
from bdcore import StepInfo, TrainHook, train

from bdb_defense_awm.config import AWMConfig


class WeightMask(nn.Module):
    """A soft mask in [0, 1] over the weight of each chosen layer, applied by reparameterisation.

    `forward(model, x)` runs the model with weight * mask through `torch.func.functional_call`;
    the model's own tensors are untouched until `apply_to(model)`.
    """

    def __init__(self, layers: list[tuple[str, nn.Module]]) -> None:
        super().__init__()
        self.names = [f"{n}.weight" for n, _ in layers]
        self.weights = [m.weight for _, m in layers]
        self.masks = nn.ParameterList([nn.Parameter(torch.ones_like(w, memory_format=torch.contiguous_format))
                                       for w in self.weights])

    def masked(self) -> dict[str, torch.Tensor]:
        return {n: w * m for n, w, m in zip(self.names, self.weights, self.masks)}

    def forward(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return functional_call(model, self.masked(), (x,))

    def l1(self) -> torch.Tensor:
        return sum(m.sum() for m in self.masks)

    @torch.no_grad()
    def clamp_(self) -> None:
        for m in self.masks:
            m.clamp_(0.0, 1.0)

    @torch.no_grad()
    def apply_to(self, model: nn.Module) -> None:
        for w, m in zip(self.weights, self.masks):
            w.mul_(m.to(w.dtype))

    @torch.no_grad()
    def stats(self) -> dict[str, float]:
        flat = torch.cat([m.flatten() for m in self.masks]).float()
        return {
            "masked_weights": int(flat.numel()),
            "mean": round(float(flat.mean()), 5),
            "min": round(float(flat.min()), 5),
            "share_below_0.5": round(float((flat < 0.5).float().mean()), 5),
            "share_zero": round(float((flat == 0).float().mean()), 5),
            "share_one": round(float((flat == 1).float().mean()), 5),
            "layer_means": {n[:-len(".weight")]: round(float(m.mean()), 5) for n, m in zip(self.names, self.masks)},
        }


class AWMHook(TrainHook):
    """The trainer's view of AWM: re-solve the inner maximisation before every epoch, mask loss, clip."""

    def __init__(self, wmask: WeightMask, data: TrainSet, config: AWMConfig, bound: float, augmented: bool,
                 seed: int) -> None:
        self.wmask, self.data, self.c, self.bound, self.augmented = wmask, data, config, bound, augmented
        self.gen = torch.Generator().manual_seed(seed)
        self.inner_steps = config.inner_epochs * math.ceil(len(data) / config.batch_size)
        self.model: nn.Module | None = None
        self.trigger: tuple[torch.Tensor, torch.Tensor] | None = None
        self.norms: list[float] = []

    def _recover(self) -> None:
        model = self.model
        model.eval()
        with torch.no_grad():
            fixed = {n: t.detach() for n, t in self.wmask.masked().items()}
        transform = (lambda x: augment(x, self.gen, self.data.hflip)) if self.augmented else None
        trig = worst_case_trigger(lambda x: functional_call(model, fixed, (x,)), self.data, bound=self.bound,
                                  steps=self.inner_steps, batch_size=self.c.batch_size, lr=self.c.trigger_lr,
                                  gen=self.gen, transform=transform)
        with torch.no_grad():
            self.trigger = (trig.masks().detach(), trig.patterns().detach())
            self.norms.append(round(float(self.trigger[0].sum()), 4))

    def on_train_start(self, model: nn.Module, trainset: TrainSet) -> None:
        self.model = model
        self._recover()

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, step: StepInfo) -> torch.Tensor:
        self.model.eval()  # BN keeps its running statistics, as in the paper
        xt = stamp(x, *self.trigger)
        out = self.wmask(self.model, torch.cat([x, xt]))
        clean, triggered = out[:len(x)], out[len(x):]
        a = self.c.alpha
        return (a * F.cross_entropy(clean, y) + (1 - a) * F.cross_entropy(triggered, y)
                + self.c.gamma * self.wmask.l1())

    def after_step(self, model: nn.Module, step: StepInfo) -> None:
        self.wmask.clamp_()

    def on_epoch_end(self, model: nn.Module, epoch: int) -> None:
        if epoch + 1 < self.c.outer_epochs:
            self._recover()


def one_per_class(data: TrainSet, num_classes: int, copies: int, gen: torch.Generator) -> TrainSet:
    """One randomly chosen image per class (classes absent from `data` are skipped), repeated `copies` times."""
    picks = []
    for k in range(num_classes):
        idx = (data.y == k).nonzero().flatten()
        if len(idx):
            picks.append(idx[torch.randint(len(idx), (1,), generator=gen).to(idx.device)])
    sel = torch.cat(picks).repeat(copies)
    return TrainSet(data.x[sel], data.y[sel], hflip=data.hflip, device=data.device)


class AdversarialWeightMasking(Defense):
    """Soft-mask the conv weights that the worst-case recovered trigger relies on."""

    config: AWMConfig

    def run(self, inputs: DefenseInputs) -> DefenseOutput:
        c = self.config
        model = inputs.model
        data = inputs.reserve
        if c.oneshot:
            data = one_per_class(data, self.ctx.num_classes, c.oneshot_copies,
                                 torch.Generator().manual_seed(self.ctx.seed))
        augmented = c.augment or c.oneshot
        wmask = WeightMask(named_layers(model, CONV_TYPES + (nn.Linear,) if c.mask_linear else CONV_TYPES))
        _, h, w = self.ctx.shape
        bound = c.trigger_norm * h * w
        hook = AWMHook(wmask, data, c, bound, augmented, self.ctx.seed)
        recipe = inputs.recipe.model_copy(update={
            "epochs": c.outer_epochs, "lr": c.lr, "batch_size": c.batch_size, "optimizer": "adam",
            "weight_decay": 0.0, "schedule": "cosine", "augment": augmented, "compile": False,
        })
        val_before = accuracy_on(model, inputs.val)
        with frozen(model):
            train(model, data, recipe, seed=self.ctx.seed, hooks=[hook], params=wmask.parameters())
        wmask.apply_to(model)
        model.eval()
        info = {
            "reserve_images": len(data) // (c.oneshot_copies if c.oneshot else 1),
            "trigger_bound": round(bound, 4),
            "trigger_norm": hook.norms[-1],
            "trigger_norms": hook.norms,
            "mask": wmask.stats(),
            "val_acc_before": val_before,
            "val_acc_after": accuracy_on(model, inputs.val),
        }
        return DefenseOutput(model=model, info=info)
