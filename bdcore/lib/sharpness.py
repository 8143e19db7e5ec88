"""Sharpness-aware minimisation (SAM) as a hook of the shared trainer.

SAM (Foret et al., ICLR 2021) minimises max_{||e|| <= rho} L(w + e): each step ascends from w to
w + e(w) with e = rho * g / ||g|| (g the gradient at w), takes the gradient there, and steps from w
with that gradient. The adaptive variant (ASAM, Kwon et al., ICML 2021; FT-SAM, Zhu et al.,
ICCV 2023) bounds ||T_w^-1 e|| <= rho with T_w = diag(abs(w) + eta), giving
e = rho * T_w^2 g / ||T_w g||: weights of large magnitude are perturbed more.

Use: `train(model, data, recipe, seed=s, hooks=[SAM(rho=0.05)])`; any optimiser the recipe names
takes the step.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator, Sequence

import torch
from torch import nn

from bdcore.nn.trainer import StepInfo, TrainHook


@torch.no_grad()
def sam_perturbation(params: Sequence[torch.Tensor], grads: Sequence[torch.Tensor], rho: float, *,
                     adaptive: bool = False, eta: float = 0.0, eps: float = 1e-12) -> list[torch.Tensor]:
    """SAM's first-order worst-case weight perturbation e, one tensor per parameter.

    Plain: e = rho * g / ||g||_2 over all parameters together. Adaptive: with t = abs(w) + eta,
    e = rho * t^2 * g / ||t * g||_2. `eps` guards the division when the gradient vanishes.
    """
    scales = [(p.abs() + eta) if adaptive else None for p in params]
    norm = torch.sqrt(sum(((g if t is None else t * g).float().pow(2).sum() for g, t in zip(grads, scales)),
                          torch.zeros(())))
    factor = rho / (norm + eps)
    return [(g if t is None else t * t * g) * factor.to(g.dtype) for g, t in zip(grads, scales)]


@contextmanager
def bn_stats_frozen(model: nn.Module) -> Iterator[None]:
    """BatchNorm layers keep their running statistics (momentum 0) inside the block."""
    layers = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in layers]
    for m in layers:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, mom in zip(layers, saved):
            m.momentum = mom


class SAM(TrainHook):
    """Sharpness-aware minimisation for `bdcore.train` (plain SAM, or adaptive ASAM / FT-SAM).

    Before each optimiser step it moves the weights to w + e (see `sam_perturbation`), recomputes
    the loss and its gradient there (BatchNorm running statistics untouched by that second pass),
    moves the weights back to w, and leaves the perturbed-point gradient for the optimiser.

    Args:
        rho: the perturbation radius.
        adaptive: scale the perturbation by abs(w) + eta per weight (ASAM, as FT-SAM does).
        eta: ASAM's offset that lets zero weights move (FT-SAM's equation uses 0).
    """

    def __init__(self, rho: float, *, adaptive: bool = False, eta: float = 0.0) -> None:
        self.rho, self.adaptive, self.eta = rho, adaptive, eta

    def before_update(self, model: nn.Module, params: Sequence[torch.Tensor], regrad: Callable[[], torch.Tensor],
                      step: StepInfo) -> None:
        live = [p for p in params if p.grad is not None]
        if not live or self.rho == 0:
            return
        e = sam_perturbation(live, [p.grad for p in live], self.rho, adaptive=self.adaptive, eta=self.eta)
        with torch.no_grad():
            for p, d in zip(live, e):
                p.add_(d)
        try:
            with bn_stats_frozen(model):
                regrad()
        finally:
            with torch.no_grad():
                for p, d in zip(live, e):
                    p.sub_(d)
