"""Low Frequency (LF): a smooth universal adversarial perturbation as the trigger.

Zeng et al. show that most triggers carry high-frequency artifacts that a simple detector finds,
and build a trigger without them: a universal adversarial perturbation towards the target class
(the UAP loop of Moosavi-Dezfooli et al. with targeted DeepFool steps) that is passed through a
Gaussian low-pass filter at every update, so that only low frequencies survive. Poisoned samples
carry the perturbation and the target label. The defaults follow the reference benchmark's pattern
generator (a 6-pixel Gaussian, the pattern min-max rescaled to [0, 0.2]; README "Reference settings").
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from bdcore import Attack, AttackContext, ImageDataset, train_surrogate

from bdb_attack_lf.config import LFConfig

TRIGGER_VERSION = 2
"""Part of the trigger's artifact key: 2 is the reference's generator (1 was the UAP-style L-inf loop)."""


def window_size(sigma: float, kernel_size: int | None = None) -> int:
    """Taps of the Gaussian window: kernel_size, or the reference's rule round(5 sigma) (30 for sigma 6)."""
    return int(kernel_size) if kernel_size is not None else max(1, round(5 * sigma))


def gaussian_kernel(size: int, sigma: float) -> torch.Tensor:
    """The normalised 1-D Gaussian window (size,): w_i proportional to exp(-(i - (size-1)/2)^2 / (2 sigma^2)).

    For an even size the centre falls between the two middle taps (which are equal)."""
    i = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(i**2) / (2 * sigma**2))
    return g / g.sum()


def low_pass(v: torch.Tensor, size: int, sigma: float, padding: str = "zeros") -> torch.Tensor:
    """Gaussian smoothing of images (..., C, H, W): the separable window along H, then W, per channel.

    Each output pixel j sums window taps t = 0..size-1 times input pixel j + t - (size-1)//2; beyond the
    border the input is 0 ('zeros', the reference: the gain falls near the border) or the border pixel
    ('replicate'). An even window is thus centred half a pixel after j (the reference pads
    size//2 - 1 before and size//2 after).
    """
    if size == 1:
        return v.clone()
    shape = v.shape
    x = v.reshape(-1, 1, *shape[-2:])
    g = gaussian_kernel(size, sigma).to(device=v.device, dtype=v.dtype)
    before, after = (size - 1) // 2, size // 2
    mode = "constant" if padding == "zeros" else "replicate"
    x = F.conv2d(F.pad(x, (0, 0, before, after), mode=mode), g.view(1, 1, -1, 1))
    x = F.conv2d(F.pad(x, (before, after, 0, 0), mode=mode), g.view(1, 1, 1, -1))
    return x.reshape(shape)


def rescale(v: torch.Tensor, top: float) -> torch.Tensor:
    """v min-max rescaled over all its entries to [0, top] (a constant v becomes 0, where the reference
    would divide 0 by 0)."""
    lo, hi = v.min(), v.max()
    span = float(hi - lo)
    return (v - lo) * (top / span) if span > 0 else torch.zeros_like(v)


def project(v: torch.Tensor, norm: str, xi: float) -> torch.Tensor:
    """v projected on the ball of radius xi: clamp for L-inf, rescale for L2."""
    if norm == "inf":
        return v.clamp(-xi, xi)
    n = float(v.norm())
    return v * min(1.0, xi / n) if n > 0 else v


def deepfool_to_target(model: nn.Module, x: torch.Tensor, target: int, *, overshoot: float,
                       max_iter: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Targeted DeepFool per image of x (B, C, H, W): (r, steps), r the accumulated steps times 1 + overshoot.

    k is each image's top class at x, kept for all iterations; one step at the current point
    x + (1 + overshoot) r_tot is r_i = |f_t - f_k| / ||w|| * w / ||w||, w = grad(f_t - f_k) (a non-finite
    step becomes 0), and an image stops once it is classified as the target or after max_iter steps.
    steps counts the steps taken (0 for an image already at the target). The model must be in eval
    mode (images independent of each other in the batch).
    """
    rows = torch.arange(len(x), device=x.device)
    r_tot = torch.zeros_like(x)
    steps = torch.zeros(len(x), dtype=torch.long, device=x.device)
    xa = x.detach().clone().requires_grad_(True)
    logits = model(xa)
    k = logits.argmax(1)
    active = k != target
    for _ in range(max_iter):
        if not bool(active.any()):
            break
        diff = logits[:, target] - logits[rows, k]
        (w,) = torch.autograd.grad(diff.sum(), xa)
        wn = w.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
        r_i = diff.detach().abs().view(-1, 1, 1, 1) / wn * w / wn
        finite = torch.isfinite(r_i.flatten(1)).all(1)
        r_tot = r_tot + torch.where((active & finite).view(-1, 1, 1, 1), r_i, 0.0)
        steps += active.long()
        xa = (x + (1 + overshoot) * r_tot).detach().requires_grad_(True)
        logits = model(xa)
        active = active & (logits.argmax(1) != target)
    return ((1 + overshoot) * r_tot).detach(), steps


class RawInput(nn.Module):
    """The surrogate fed raw [0, 1] images as if they were normalised ones (the reference's search input):
    model(x * std + mean), since the model normalises inside."""

    def __init__(self, model: nn.Module, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(-1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x * self.std + self.mean)


@torch.no_grad()
def _predict(model: nn.Module, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    out = [model(x[s:s + batch_size]).argmax(1) for s in range(0, len(x), batch_size)]
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long, device=x.device)


def changed_share(model: nn.Module, x: torch.Tensor, shift: torch.Tensor, before: torch.Tensor) -> float:
    """Share of images x whose prediction (before: the clean one) changes once shift is added (no clipping)."""
    return float((_predict(model, x + shift) != before).float().mean()) if len(x) else 0.0


def universal_low_frequency(model: nn.Module, x: torch.Tensor, x_rate: torch.Tensor, target: int, cfg: LFConfig,
                            gen: torch.Generator, *, rate_scale: torch.Tensor | float = 1.0,
                            progress: Callable[[int, float], None] | None = None) -> tuple[torch.Tensor, float, int]:
    """The LF pattern v (C, H, W) for images x in [0, 1], the fooling rate it reached on x_rate, the passes run.

    Each pass visits x in a random order (from gen); for an image whose prediction v does not change
    (f(x + v) = f(x), no clipping), DeepFool towards the target from x + v gives r and, if it converged
    in fewer than max_iter_df - 1 steps, v <- bound(S(v + S(r))), S the Gaussian filter and bound the
    min-max rescale to [0, scale] (or, with scale None, the projection on the (norm, xi) ball). After a
    pass, the fooling rate is the share of x_rate whose prediction changes when rate_scale * v is added;
    the loop ends once it reaches cfg.fooling_rate, once the last cfg.plateau rates lie within
    plateau_tol, or after max_iter_uni passes.
    """
    size = window_size(cfg.sigma, cfg.kernel_size)

    def smooth(t: torch.Tensor) -> torch.Tensor:
        return low_pass(t, size, cfg.sigma, cfg.padding)

    def bound(t: torch.Tensor) -> torch.Tensor:
        return rescale(t, cfg.scale) if cfg.scale is not None else project(t, cfg.norm, cfg.xi / 255.0)

    v = torch.zeros(x.shape[1:], device=x.device)
    before = _predict(model, x_rate)
    rates: list[float] = []
    rate, passes = 0.0, 0
    for passes in range(1, cfg.max_iter_uni + 1):
        order = torch.randperm(len(x), generator=gen).tolist()
        for i in order:
            xi = x[i:i + 1]
            with torch.no_grad():
                clean, moved = model(torch.cat([xi, xi + v])).argmax(1).tolist()
            if clean != moved:
                continue
            r, steps = deepfool_to_target(model, xi + v, target, overshoot=cfg.overshoot, max_iter=cfg.max_iter_df)
            if int(steps[0]) < cfg.max_iter_df - 1:
                v = bound(smooth(v + smooth(r[0])))
        rate = changed_share(model, x_rate, rate_scale * v, before)
        rates.append(rate)
        if progress is not None:
            progress(passes, rate)
        if rate >= cfg.fooling_rate:
            break
        last = rates[-cfg.plateau:] if cfg.plateau else []
        if cfg.plateau and len(last) == cfg.plateau and max(last) - min(last) < cfg.plateau_tol:
            break
    return v, rate, passes


def whole_levels(v: torch.Tensor) -> torch.Tensor:
    """v on the [0, 1] scale cut to whole grey levels, floor(255 v) / 255 (as the reference's uint8 pattern
    files hold it; 1e-4 of a level absorbs float error, so 0.2 gives 51)."""
    return torch.floor(v * 255.0 + 1e-4) / 255.0


def pick_images(y: torch.Tensor, samples: int | None, per_class: int,
                gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(searched, rate) training indices, sorted: `samples` drawn uniformly (None: all), then per_class of each
    class drawn from the rest (fewer where a class has fewer left)."""
    order = torch.randperm(len(y), generator=gen)
    n = len(y) if samples is None else min(samples, len(y))
    search, rest = order[:n], order[n:]
    rate = [rest[y[rest] == c][:per_class] for c in torch.unique(y).tolist()]
    return search.sort().values, torch.cat(rate).sort().values if rate else rest[:0]


class LowFrequency(Attack):
    """Dirty-label: x' = clip(x + v), v the smooth universal perturbation (whole grey levels); the harness
    relabels."""

    def __init__(self, config: LFConfig, ctx: AttackContext) -> None:
        super().__init__(config, ctx)
        self.trigger = torch.zeros(ctx.shape, device=ctx.device)
        """The perturbation v (C, H, W) on the [0, 1] scale."""
        self.fooling = float("nan")
        """Fooling rate the perturbation reached on the surrogate (after prepare)."""
        self.passes = 0
        """Passes of the universal loop that built it (after prepare)."""

    def prepare(self, data: ImageDataset) -> None:
        cfg, ctx = self.config, self.ctx
        model, skey = train_surrogate(ctx, data, model=cfg.surrogate_model, seed=cfg.surrogate_seed,
                                      recipe={"epochs": cfg.surrogate_epochs, "lr": cfg.surrogate_lr})
        key = {"surrogate": skey, "target": ctx.target, "seed": ctx.seed, "version": TRIGGER_VERSION,
               **cfg.model_dump(exclude={"surrogate_model", "surrogate_epochs", "surrogate_lr", "surrogate_seed"})}

        def build() -> dict[str, torch.Tensor]:
            gen = torch.Generator().manual_seed(ctx.seed)
            search, rate = pick_images(data.y_train, cfg.samples, cfg.rate_per_class, gen)
            x = data.x_train[search].to(ctx.device).float() / 255.0
            x_rate = data.x_train[rate].to(ctx.device).float() / 255.0
            net, shift = model, 1.0
            if cfg.search_input == "raw":
                net = RawInput(model, data.mean, data.std).to(ctx.device).eval()
                shift = net.std  # the reference adds v to the normalised image when it measures the rate
            v, fooled, passes = universal_low_frequency(
                net, x, x_rate, ctx.target, cfg, gen,
                rate_scale=shift, progress=lambda i, _r: self.report("lf trigger", i, cfg.max_iter_uni))
            if cfg.whole_levels:
                v = whole_levels(v)
            return {"trigger": v, "fooling_rate": torch.tensor(fooled), "passes": torch.tensor(passes)}

        t = ctx.artifacts.get_or_build("lf-trigger", key, build)
        self.load_state(t)

    def apply_trigger(self, x: torch.Tensor, *, train: bool, idx: torch.Tensor | None = None) -> torch.Tensor:
        return (x + self.trigger.to(device=x.device, dtype=x.dtype)).clamp(0.0, 1.0)

    def state(self) -> dict[str, torch.Tensor]:
        return {"trigger": self.trigger, "fooling_rate": torch.tensor(self.fooling), "passes": torch.tensor(self.passes)}

    def load_state(self, tensors: dict[str, torch.Tensor]) -> None:
        self.trigger = tensors["trigger"].to(self.ctx.device)
        self.fooling = float(tensors.get("fooling_rate", torch.tensor(float("nan"))))
        self.passes = int(tensors.get("passes", torch.tensor(0)))
