"""Low Frequency (LF): a smooth universal adversarial perturbation as the trigger.

Zeng et al. show that most triggers carry high-frequency artifacts that a simple detector finds,
and build a trigger without them: a universal adversarial perturbation towards the target class
(the UAP loop of Moosavi-Dezfooli et al. with targeted DeepFool steps) that is passed through a
Gaussian low-pass filter after every update, so that only low frequencies survive. Poisoned
samples carry the perturbation and the target label.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from bdcore import Attack, AttackContext, ImageDataset, train_surrogate

from bdb_attack_lf.config import LFConfig


def gaussian_kernel(size: int, sigma: float) -> torch.Tensor:
    """The normalised 1-D Gaussian window (size,): w_i proportional to exp(-i^2 / (2 sigma^2)), i centred."""
    i = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(i**2) / (2 * sigma**2))
    return g / g.sum()


def low_pass(v: torch.Tensor, size: int, sigma: float) -> torch.Tensor:
    """Gaussian low-pass filter of images (..., C, H, W): separable convolution per channel, borders
    replicated (the DC gain is 1: a constant image is unchanged)."""
    if size == 1:
        return v.clone()
    shape = v.shape
    x = v.reshape(-1, 1, *shape[-2:])
    g = gaussian_kernel(size, sigma).to(device=v.device, dtype=v.dtype)
    p = size // 2
    x = F.conv2d(F.pad(x, (p, p, 0, 0), mode="replicate"), g.view(1, 1, 1, -1))
    x = F.conv2d(F.pad(x, (0, 0, p, p), mode="replicate"), g.view(1, 1, -1, 1))
    return x.reshape(shape)


def project(v: torch.Tensor, norm: str, xi: float) -> torch.Tensor:
    """v projected on the ball of radius xi: clamp for L-inf, rescale for L2."""
    if norm == "inf":
        return v.clamp(-xi, xi)
    n = float(v.norm())
    return v * min(1.0, xi / n) if n > 0 else v


def deepfool_to_target(model: nn.Module, x: torch.Tensor, target: int, *, overshoot: float,
                       max_iter: int) -> torch.Tensor:
    """Targeted DeepFool per image of x (B, C, H, W): the accumulated minimal L2 steps (times 1 + overshoot)
    that move each image's prediction k to the target, linearising f_target - f_k at every iteration.

    One step for an image predicted k != target: r = (|f_t - f_k| + 1e-4) / ||w||^2 * w with
    w = grad(f_t - f_k); images already at the target stop moving. The model must be in eval mode
    (images independent of each other in the batch).
    """
    r_tot = torch.zeros_like(x)
    for _ in range(max_iter):
        xa = (x + (1 + overshoot) * r_tot).requires_grad_(True)
        logits = model(xa)
        pred = logits.argmax(1)
        active = pred != target
        if not bool(active.any()):
            break
        diff = logits[:, target] - logits.gather(1, pred[:, None])[:, 0]
        (w,) = torch.autograd.grad(diff.sum(), xa)
        w2 = w.flatten(1).pow(2).sum(1).clamp_min(1e-12)
        step = (diff.detach().abs() + 1e-4) / w2
        r_tot = r_tot + torch.where(active.view(-1, 1, 1, 1), step.view(-1, 1, 1, 1) * w, 0.0)
    return (1 + overshoot) * r_tot


def universal_low_frequency(model: nn.Module, x: torch.Tensor, target: int, cfg: LFConfig, gen: torch.Generator,
                            progress: Callable[[int, float], None] | None = None) -> tuple[torch.Tensor, float]:
    """The LF trigger (C, H, W) for images x in [0, 1] and the fooling rate it reached.

    Each pass visits the images in a random order (from gen), in batches of cfg.batch_size: for the
    images that clip(x + v) does not yet send to the target, the DeepFool step towards the target
    (from clip(x + v)) is averaged, added to v, and v <- project(low_pass(v)). The loop ends after
    max_iter_uni passes or once the share of images sent to the target reaches fooling_rate.
    """
    xi = cfg.xi / 255.0
    v = torch.zeros(x.shape[1:], device=x.device)
    rate = 0.0
    for it in range(cfg.max_iter_uni):
        order = torch.randperm(len(x), generator=gen).to(x.device)
        for s in range(0, len(x), cfg.batch_size):
            xb = (x[order[s:s + cfg.batch_size]] + v).clamp(0.0, 1.0)
            with torch.no_grad():
                need = model(xb).argmax(1) != target
            if not bool(need.any()):
                continue
            r = deepfool_to_target(model, xb[need], target, overshoot=cfg.overshoot, max_iter=cfg.max_iter_df)
            v = project(low_pass(v + r.mean(0), cfg.kernel_size, cfg.sigma), cfg.norm, xi)
        rate = fooling_rate(model, x, v, target)
        if progress is not None:
            progress(it + 1, rate)
        if rate >= cfg.fooling_rate:
            break
    return v, rate


@torch.no_grad()
def fooling_rate(model: nn.Module, x: torch.Tensor, v: torch.Tensor, target: int, batch_size: int = 512) -> float:
    """Share of images x that the model classifies as the target once v is added (clipped to [0, 1])."""
    hits = 0
    for s in range(0, len(x), batch_size):
        hits += int((model((x[s:s + batch_size] + v).clamp(0.0, 1.0)).argmax(1) == target).sum())
    return hits / max(1, len(x))


class LowFrequency(Attack):
    """Dirty-label: x' = clip(x + v), v the low-passed universal perturbation; the harness relabels."""

    def __init__(self, config: LFConfig, ctx: AttackContext) -> None:
        super().__init__(config, ctx)
        self.trigger = torch.zeros(ctx.shape, device=ctx.device)
        """The perturbation v (C, H, W) on the [0, 1] scale."""
        self.fooling = float("nan")
        """Fooling rate the perturbation reached on the surrogate (after prepare)."""

    def prepare(self, data: ImageDataset) -> None:
        cfg, ctx = self.config, self.ctx
        model, skey = train_surrogate(ctx, data, model=cfg.surrogate_model, seed=cfg.surrogate_seed,
                                      recipe={"epochs": cfg.surrogate_epochs, "lr": cfg.surrogate_lr})
        key = {"surrogate": skey, "target": ctx.target, "seed": ctx.seed,
               **cfg.model_dump(exclude={"surrogate_model", "surrogate_epochs", "surrogate_lr", "surrogate_seed"})}

        def build() -> dict[str, torch.Tensor]:
            gen = torch.Generator().manual_seed(ctx.seed)
            pick = torch.randperm(len(data.y_train), generator=gen)
            if cfg.samples is not None:
                pick = pick[:cfg.samples]
            x = data.x_train[pick.sort().values].to(ctx.device).float() / 255.0
            v, rate = universal_low_frequency(model, x, ctx.target, cfg, gen,
                                              progress=lambda i, _r: self.report("lf trigger", i, cfg.max_iter_uni))
            return {"trigger": v, "fooling_rate": torch.tensor(rate)}

        t = ctx.artifacts.get_or_build("lf-trigger", key, build)
        self.load_state(t)

    def apply_trigger(self, x: torch.Tensor, *, train: bool, idx: torch.Tensor | None = None) -> torch.Tensor:
        return (x + self.trigger.to(device=x.device, dtype=x.dtype)).clamp(0.0, 1.0)

    def state(self) -> dict[str, torch.Tensor]:
        return {"trigger": self.trigger, "fooling_rate": torch.tensor(self.fooling)}

    def load_state(self, tensors: dict[str, torch.Tensor]) -> None:
        self.trigger = tensors["trigger"].to(self.ctx.device)
        self.fooling = float(tensors.get("fooling_rate", torch.tensor(float("nan"))))
