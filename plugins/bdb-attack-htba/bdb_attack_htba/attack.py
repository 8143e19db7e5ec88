"""Hidden Trigger Backdoor (HTBA): poisons that look like the target class, and carry a hidden patch in feature space.

Saha et al. paste a patch trigger on source images and optimise target-class images, within an
L-inf ball, so that a clean model's features of each poison collide with those of a patched
source image. The poisons keep their correct (target) label and show no patch; a model trained
on them learns to map "patched source features" to the target, and at test time the patch,
pasted at a random place, triggers it.
"""

from __future__ import annotations

import torch
from torch import nn

from bdcore import (
    Attack, AttackContext, FeatureTap, ImageDataset, classifier, quantize, random_pattern, resize_uint8, sample_uniforms,
    train_surrogate,
)

from bdb_attack_htba.config import HTBAConfig

REFERENCE = 32


def patch_image(cfg: HTBAConfig, shape: tuple[int, int, int]) -> torch.Tensor:
    """The patch (C, s, s) in [0, 1]: a random uint8 pattern of patch_size on the 32x32 reference,
    resized (Pillow bilinear on uint8) by the image's scale, s = round(patch_size * H / 32)."""
    c, h, _ = shape
    p = cfg.patch_size
    s = max(1, round(p * h / REFERENCE))
    pat = (random_pattern((c, p, p), cfg.pattern_seed) * 255).round().to(torch.uint8)
    return resize_uint8(pat, (s, s)).float() / 255.0


def paste(x: torch.Tensor, patch: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """x (B, C, H, W) with the patch (C, s, s) overwriting the square whose top-left corner is (rows[i], cols[i])."""
    b, _, h, w = x.shape
    s = patch.shape[-1]
    r = torch.arange(h, device=x.device)[None, :, None]
    c = torch.arange(w, device=x.device)[None, None, :]
    r0, c0 = rows.to(x.device).view(-1, 1, 1), cols.to(x.device).view(-1, 1, 1)
    inside = (r >= r0) & (r < r0 + s) & (c >= c0) & (c < c0 + s)  # (B, H, W)
    rr = (r - r0).clamp(0, s - 1).expand(b, h, w)
    cc = (c - c0).clamp(0, s - 1).expand(b, h, w)
    canvas = patch.to(x)[:, rr, cc].permute(1, 0, 2, 3)  # (B, C, H, W): the patch pixel under each position
    return torch.where(inside[:, None], canvas, x)


def random_places(n: int, size: int, h: int, w: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """n top-left corners (rows, cols) drawn uniformly so that a size x size patch fits in the image."""
    rows = torch.randint(0, h - size + 1, (n,), generator=gen)
    cols = torch.randint(0, w - size + 1, (n,), generator=gen)
    return rows, cols


def greedy_match(dist: torch.Tensor) -> torch.Tensor:
    """A one-to-one assignment of rows to columns of a square distance matrix, taking the globally closest
    remaining pair first: perm[i] = the column matched to row i."""
    d = dist.clone()
    n = d.shape[0]
    perm = torch.empty(n, dtype=torch.long, device=d.device)
    for _ in range(n):
        k = int(d.argmin())
        i, j = divmod(k, d.shape[1])
        perm[i] = j
        d[i, :] = float("inf")
        d[:, j] = float("inf")
    return perm


def features(model: nn.Module, x: torch.Tensor, detach: bool = True) -> torch.Tensor:
    """The surrogate's penultimate features (the classification head's input) of x."""
    _, head = classifier(model)
    with FeatureTap(head, use_input=True, detach=detach) as tap:
        model(x)
        return tap.value.flatten(1)


def optimise_poisons(model: nn.Module, targets: torch.Tensor, sources: torch.Tensor, patch: torch.Tensor,
                     cfg: HTBAConfig, gen: torch.Generator) -> torch.Tensor:
    """Poisons for target images (K, C, H, W): at every step K source images are drawn, patched at random
    places, and each poison is matched one-to-one to the closest patched source in feature space; then
    z <- project(z - lr * grad ||f(z) - f(s~)||^2) onto |z - t|_inf <= eps and [0, 1]."""
    eps = cfg.eps / 255.0
    z = targets.clone()
    k = len(targets)
    _, _, h, w = targets.shape
    lr = cfg.lr
    for it in range(cfg.iterations):
        if it and it % cfg.decay_every == 0:
            lr *= cfg.lr_decay
        pick = torch.randint(0, len(sources), (k,), generator=gen)
        rows, cols = random_places(k, patch.shape[-1], h, w, gen)
        with torch.no_grad():
            fs = features(model, paste(sources[pick.to(sources.device)], patch, rows, cols))
        z.requires_grad_(True)
        fz = features(model, z, detach=False)
        with torch.no_grad():
            perm = greedy_match(torch.cdist(fz.detach(), fs))
        loss = (fz - fs[perm]).pow(2).sum()
        (grad,) = torch.autograd.grad(loss, z)
        with torch.no_grad():
            z = z - lr * grad
            z = torch.min(torch.max(z, targets - eps), targets + eps).clamp(0.0, 1.0)
    return z.detach()


def place_for(idx: torch.Tensor, seed: int, size: int, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The test-time patch corner of each test sample idx: uniform over the places where the patch fits, a
    fixed function of (seed, index) alone (`bdcore.sample_uniforms`), so a sample gets the same place
    whatever batch it is in and in every evaluation."""
    u = sample_uniforms(seed, idx.cpu(), 2)
    rows = (u[:, 0] * (h - size + 1)).long().clamp(max=h - size)
    cols = (u[:, 1] * (w - size + 1)).long().clamp(max=w - size)
    return rows, cols


class HiddenTrigger(Attack):
    """Clean-label: target-class training images -> optimised poisons (labels kept); test images -> patch pasted."""

    clean_label = True

    def __init__(self, config: HTBAConfig, ctx: AttackContext) -> None:
        super().__init__(config, ctx)
        self.patch = patch_image(config, ctx.shape).to(ctx.device)
        self.poison_index = torch.empty(0, dtype=torch.long, device=ctx.device)
        """Training indices that have a poison image (sorted)."""
        self.poisons = torch.empty(0, *ctx.shape, dtype=torch.uint8, device=ctx.device)
        """The poison images (uint8) of poison_index."""
        self._pidx: torch.Tensor | None = None

    def prepare(self, data: ImageDataset) -> None:
        cfg, ctx = self.config, self.ctx
        model, skey = train_surrogate(ctx, data, model=cfg.surrogate_model, seed=cfg.surrogate_seed,
                                      recipe={"epochs": cfg.surrogate_epochs, "lr": cfg.surrogate_lr})
        key = {"surrogate": skey, "target": ctx.target, "seed": ctx.seed,
               **cfg.model_dump(include={"eps", "iterations", "lr", "lr_decay", "decay_every", "batch_size",
                                         "patch_size", "pattern_seed"})}
        idx = torch.nonzero(data.y_train == ctx.target).flatten()

        def build() -> dict[str, torch.Tensor]:
            gen = torch.Generator().manual_seed(ctx.seed)
            sources = data.x_train[data.y_train != ctx.target].to(ctx.device).float() / 255.0
            out = []
            for s in range(0, len(idx), cfg.batch_size):
                t = data.x_train[idx[s:s + cfg.batch_size]].to(ctx.device).float() / 255.0
                z = optimise_poisons(model, t, sources, self.patch, cfg, gen)
                out.append((quantize(z, "truncate") * 255.0).round().to(torch.uint8).cpu())
            return {"index": idx, "poisons": torch.cat(out) if out else data.x_train[:0]}

        t = ctx.artifacts.get_or_build("htba-poisons", key, build)
        self._set(t["index"], t["poisons"])

    def _set(self, index: torch.Tensor, poisons: torch.Tensor) -> None:
        self.poison_index = index.to(self.ctx.device, torch.long)
        self.poisons = poisons.to(self.ctx.device, torch.uint8)

    def poison_indices(self, y_train: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        self._pidx = super().poison_indices(y_train, gen)
        return self._pidx

    def poison_x(self, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """The optimised poison of each training sample idx (x where a sample has none): no patch."""
        if not len(self.poison_index):
            return x
        idx = idx.to(self.poison_index.device)
        pos = torch.searchsorted(self.poison_index, idx).clamp(max=len(self.poison_index) - 1)
        found = (self.poison_index[pos] == idx).to(x.device)
        z = self.poisons[pos].to(device=x.device, dtype=x.dtype) / 255.0
        return torch.where(found.view(-1, 1, 1, 1), z, x)

    def apply_trigger(self, x: torch.Tensor, *, train: bool, idx: torch.Tensor | None = None) -> torch.Tensor:
        _, _, h, w = x.shape
        s = self.patch.shape[-1]
        if self.config.test_location == "bottom-right" or idx is None:
            rows = torch.full((len(x),), h - s)
            cols = torch.full((len(x),), w - s)
        else:
            rows, cols = place_for(idx, self.ctx.seed, s, h, w)
        return paste(x, self.patch, rows, cols)

    def state(self) -> dict[str, torch.Tensor]:
        keep = self.poison_index if self._pidx is None else self._pidx.to(self.poison_index.device)
        sel = torch.isin(self.poison_index, keep)
        return {"poison_index": self.poison_index[sel], "poisons": self.poisons[sel]}

    def load_state(self, tensors: dict[str, torch.Tensor]) -> None:
        self._set(tensors["poison_index"], tensors["poisons"])
