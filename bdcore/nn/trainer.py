"""The one trainer: victim training, retraining and fine-tuning all go through `train`.

Data stays on the training device as uint8; every step takes a batch of indices, poisons and
augments it on tensors, lets the hooks rewrite the batch or the loss, and steps the optimiser.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from bdcore.data.augmentation import augment
from bdcore.config import TrainRecipe
from bdcore.data.trainset import TrainSet


@dataclass
class StepInfo:
    """Where training is, handed to every hook call."""

    epoch: int
    step: int
    total_steps: int
    gen: torch.Generator
    """Seeded generator for any randomness a hook needs (keeps runs reproducible)."""
    running_loss: float = float("nan")
    """Exponential moving average of the training loss."""
    stop: bool = False
    """A hook sets this to end training after the current step (e.g. an early-stopping criterion)."""


class TrainHook:
    """Extension points of the training step (training-controlled attacks, some defenses)."""

    def on_train_start(self, model: nn.Module, trainset: TrainSet) -> None:
        """Called once before the first step."""

    def on_batch(self, x: torch.Tensor, y: torch.Tensor, step: StepInfo) -> tuple[torch.Tensor, torch.Tensor]:
        """Rewrite an augmented batch (float [0, 1] images, labels) before the forward pass."""
        return x, y

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, step: StepInfo) -> torch.Tensor | None:
        """Return a loss to replace cross-entropy of model(x) vs y, or None to keep it."""
        return None

    def before_update(self, model: nn.Module, params: Sequence[torch.Tensor], regrad: Callable[[], torch.Tensor],
                      step: StepInfo) -> None:
        """Called after the backward pass, before the optimiser step, with the gradients of `params` in place.

        `regrad()` recomputes the step's loss on the same batch (zeroing the gradients first, then
        forward and backward) and returns it, so a hook may move the weights, take the gradient there
        and move them back: sharpness-aware minimisation (`bdcore.SAM`) or weight-perturbation
        methods. The optimiser then steps with whatever gradients are in place.
        """

    def after_step(self, model: nn.Module, step: StepInfo) -> None:
        """Called after the optimiser step (e.g. to update a trigger generator)."""

    def on_epoch_end(self, model: nn.Module, epoch: int) -> None:
        """Called after every epoch."""


@dataclass
class TrainStats:
    """What a training run measured."""

    epochs: int
    steps: int
    images: int
    seconds: float
    final_loss: float
    losses: list[float] = field(default_factory=list)
    precision: str = "fp32"
    """The arithmetic training used (a recipe's 'auto' resolved on the device)."""

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds if self.seconds else 0.0


ProgressFn = Callable[[int, int, float], None]
"""progress(step_done, total_steps, running_loss)."""


def make_optimizer(params: Iterable[torch.Tensor], recipe: TrainRecipe) -> torch.optim.Optimizer:
    """The optimiser a recipe names."""
    if recipe.optimizer == "adam":
        return torch.optim.Adam(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    return torch.optim.SGD(params, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay,
                           nesterov=recipe.nesterov and recipe.momentum > 0)


class Plateau:
    """The 'plateau' schedule: the learning rate falls x0.1 once the epoch's mean training loss has
    not improved by 1e-4 (relative) on its best for more than 10 epochs (PyTorch's
    ReduceLROnPlateau defaults: mode min, factor 0.1, patience 10, threshold 1e-4 rel, no cooldown)."""

    FACTOR, PATIENCE, THRESHOLD = 0.1, 10, 1e-4

    def __init__(self, lr: float) -> None:
        self.lr, self.best, self.bad = lr, math.inf, 0

    def epoch_end(self, loss: float) -> float:
        if loss < self.best * (1 - self.THRESHOLD):
            self.best, self.bad = loss, 0
        else:
            self.bad += 1
        if self.bad > self.PATIENCE:
            self.lr *= self.FACTOR
            self.bad = 0
        return self.lr


def lr_at(recipe: TrainRecipe, step: int, total: int) -> float:
    """Learning rate at a step: constant, cosine annealed per step from lr to 0, or cyclic.

    ('plateau' depends on the losses, not on the step: see `Plateau`; here it is the starting lr.)

    cyclic: `recipe.cycles` triangular cycles (Smith's CLR) over the run; each ramps linearly from
    `recipe.lr_min` at its start to `recipe.lr` at its middle and back down to `lr_min`.
    """
    if recipe.schedule == "cosine":
        return recipe.lr * 0.5 * (1 + math.cos(math.pi * step / max(1, total)))
    if recipe.schedule == "cyclic":
        pos = recipe.cycles * step / max(1, total)
        height = 1.0 - abs(2.0 * (pos - math.floor(pos)) - 1.0)
        return recipe.lr_min + (recipe.lr - recipe.lr_min) * height
    return recipe.lr


def bf16_supported(device: torch.device) -> bool:
    """Whether bf16 autocast runs natively on a device (CUDA with bf16, or a CPU with avx512_bf16/AMX)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            return False
    return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """The arithmetic a recipe's precision means on a device: 'fp32' or 'bf16'."""
    if precision == "auto":
        return "bf16" if bf16_supported(device) else "fp32"
    return precision


def train(
    model: nn.Module,
    data: TrainSet,
    recipe: TrainRecipe,
    *,
    seed: int,
    hooks: Sequence[TrainHook] = (),
    params: Iterable[torch.Tensor] | None = None,
    progress: ProgressFn | None = None,
) -> TrainStats:
    """Train `model` in place on `data` following `recipe`; deterministic for a given seed.

    params: the tensors to optimise (default: all of the model's parameters).
    """
    device = data.device
    model.to(device)
    if recipe.channels_last and device.type in ("cpu", "cuda"):
        model.to(memory_format=torch.channels_last)
    fwd = torch.compile(model) if recipe.compile else model
    params = list(params if params is not None else model.parameters())
    opt = make_optimizer(params, recipe)
    gen = torch.Generator().manual_seed(seed)
    n = len(data)
    steps_per_epoch = math.ceil(n / recipe.batch_size)
    total = steps_per_epoch * recipe.epochs
    amp = resolve_precision(recipe.precision, device) == "bf16"
    info = StepInfo(0, 0, total, gen)
    plateau = Plateau(recipe.lr) if recipe.schedule == "plateau" else None
    for h in hooks:
        h.on_train_start(model, data)
    losses: list[float] = []
    images = 0
    t0 = time.perf_counter()
    model.train()
    for epoch in range(recipe.epochs):
        info.epoch = epoch
        order = torch.randperm(n, generator=gen)
        epoch_loss, epoch_steps = 0.0, 0
        for s in range(steps_per_epoch):
            idx = order[s * recipe.batch_size:(s + 1) * recipe.batch_size]
            x, y = data.batch(idx)
            if recipe.augment:
                x = augment(x, gen, data.hflip)
            for h in hooks:
                x, y = h.on_batch(x, y, info)
            if recipe.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            for g in opt.param_groups:
                g["lr"] = plateau.lr if plateau is not None else lr_at(recipe, info.step, total)

            def step_loss(x: torch.Tensor = x, y: torch.Tensor = y) -> torch.Tensor:
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                    for h in hooks:
                        hook_loss = h.loss(fwd, x, y, info)
                        if hook_loss is not None:
                            return hook_loss
                    return F.cross_entropy(fwd(x), y)

            def regrad() -> torch.Tensor:
                opt.zero_grad(set_to_none=True)
                again = step_loss()
                again.backward()
                return again.detach()

            loss = step_loss()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            for h in hooks:
                h.before_update(model, params, regrad, info)
            opt.step()
            lv = float(loss.detach())
            info.running_loss = lv if math.isnan(info.running_loss) else 0.9 * info.running_loss + 0.1 * lv
            for h in hooks:
                h.after_step(model, info)
            images += len(y)
            info.step += 1
            if progress is not None:
                progress(info.step, total, info.running_loss)
            epoch_loss += lv
            epoch_steps += 1
            if info.stop:
                break
        losses.append(info.running_loss)
        if plateau is not None and epoch_steps:
            plateau.epoch_end(epoch_loss / epoch_steps)
        for h in hooks:
            h.on_epoch_end(model, epoch)
        if info.stop:
            break
    model.eval()
    if recipe.channels_last:
        model.to(memory_format=torch.contiguous_format)
    return TrainStats(len(losses), info.step, images, time.perf_counter() - t0, info.running_loss, losses,
                      "bf16" if amp else "fp32")


EVAL_BATCH = 256
"""Inference batch: large enough to fill the cores, small enough that a ResNet's activations stay in cache
(on the 2-core CPU PreAct-ResNet18 infers faster at 256 than at 1024)."""


@torch.inference_mode()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = EVAL_BATCH, device: torch.device | None = None,
            precision: str = "fp32") -> torch.Tensor:
    """Predicted classes for images (uint8 or float [0, 1]), batched, in eval mode, at inference speed:
    channels-last weights and inputs on CPU and CUDA (as the trainer runs; the model is back to contiguous
    after), bf16 autocast when precision is 'bf16' (or 'auto' where bf16 is native)."""
    device = device or next(model.parameters()).device
    model.eval()
    fast = device.type in ("cpu", "cuda")
    amp = resolve_precision(precision, device) == "bf16"
    if fast:
        model.to(memory_format=torch.channels_last)
    out = []
    try:
        for s in range(0, len(x), batch_size):
            xb = x[s:s + batch_size].to(device)
            xb = xb.float().div_(255.0) if xb.dtype == torch.uint8 else xb.float()
            if fast:
                xb = xb.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                out.append(model(xb).argmax(1).cpu())
    finally:
        if fast:
            model.to(memory_format=torch.contiguous_format)
    return torch.cat(out) if out else torch.empty(0, dtype=torch.long)
