"""Label-Consistent backdoor: adversarially perturbed target-class images carry a corner trigger.

Turner et al. make the poisoned target-class images hard to classify from their content (a PGD
perturbation against an adversarially trained, robust, surrogate, whose perturbations change what
the image shows), so the network leans on the trigger to label them; the labels stay correct.
The test-time trigger is the checkerboard alone.
"""

from __future__ import annotations

import torch

from bdcore import Attack, AttackContext, ImageDataset, pgd_linf, quantize, resize_uint8, train_surrogate

from bdb_attack_lc.config import LCConfig

REFERENCE = 32

# the reference's 3x3 corner patterns (+1: white, -1: black); the right corners mirror the left ones
_LEFT = torch.tensor([[1, -1, -1], [-1, 1, -1], [1, -1, 1]], dtype=torch.int8)


def sign_image() -> torch.Tensor:
    """The reference's 32x32 trigger as signs (H, W) int8: +1 white, -1 black, 0 untouched."""
    t = torch.zeros(REFERENCE, REFERENCE, dtype=torch.int8)
    right = _LEFT.flip(1)
    t[:3, :3] = _LEFT
    t[-3:, :3] = _LEFT
    t[:3, -3:] = right
    t[-3:, -3:] = right
    return t


def trigger_delta(shape: tuple[int, int, int], resize: str = "nearest") -> torch.Tensor:
    """The trigger at the data's size as an additive image (C, H, W) in [-1, 1].

    The white and black parts are resized as two uint8 images (Pillow bilinear, antialiased when
    shrinking: `resize_uint8`) or by nearest neighbour; at 32x32 both give the signs exactly.
    """
    c, h, w = shape
    s = sign_image()
    if resize == "nearest":
        rows = (torch.arange(h) * REFERENCE // h).clamp(max=REFERENCE - 1)
        cols = (torch.arange(w) * REFERENCE // w).clamp(max=REFERENCE - 1)
        d = s[rows][:, cols].float()
    else:
        white = resize_uint8(((s > 0).to(torch.uint8) * 255)[None], (h, w))[0]
        black = resize_uint8(((s < 0).to(torch.uint8) * 255)[None], (h, w))[0]
        d = (white.float() - black.float()) / 255.0
    return d.expand(c, h, w).clone()


def add_delta(x: torch.Tensor, delta: torch.Tensor, amplitude: float = 1.0) -> torch.Tensor:
    """clip(x + amplitude * delta) on images (B, C, H, W) in [0, 1] (the reference adds +-255)."""
    return (x + amplitude * delta.to(device=x.device, dtype=x.dtype)).clamp(0.0, 1.0)


def to_levels(x: torch.Tensor) -> torch.Tensor:
    """Float images in [0, 1] to uint8, truncating as the reference stores images."""
    return (quantize(x, "truncate") * 255.0).round().to(torch.uint8)


class LabelConsistent(Attack):
    """Clean-label: target-class training images -> PGD(x) + checkerboard; test images -> x + checkerboard."""

    clean_label = True

    def __init__(self, config: LCConfig, ctx: AttackContext) -> None:
        super().__init__(config, ctx)
        self.delta = trigger_delta(ctx.shape, config.resize).to(ctx.device)
        self.adv_index = torch.empty(0, dtype=torch.long, device=ctx.device)
        """Training indices that have an adversarial image (sorted)."""
        self.adv = torch.empty(0, *ctx.shape, dtype=torch.uint8, device=ctx.device)
        """The adversarial images (uint8) of adv_index."""
        self._pidx: torch.Tensor | None = None

    def surrogate_recipe(self) -> dict:
        """The surrogate's training recipe: the reference victim recipe with the configured epochs and lr."""
        return {"epochs": self.config.surrogate_epochs, "lr": self.config.surrogate_lr}

    def prepare(self, data: ImageDataset) -> None:
        cfg, ctx = self.config, self.ctx
        idx = torch.nonzero(data.y_train == ctx.target).flatten()
        if cfg.steps == 0 or cfg.eps == 0:
            self._set(idx, data.x_train[idx])
            return
        robust = {"eps": cfg.surrogate_adv_eps / 255, "step_size": cfg.surrogate_adv_step_size / 255,
                  "steps": cfg.surrogate_adv_steps} if cfg.surrogate_adv_eps > 0 else None
        model, skey = train_surrogate(ctx, data, model=cfg.surrogate_model, recipe=self.surrogate_recipe(),
                                      seed=cfg.surrogate_seed, adversarial=robust)
        key = {"surrogate": skey, "target": ctx.target, "eps": cfg.eps, "step_size": cfg.step_size, "steps": cfg.steps}

        def build() -> dict[str, torch.Tensor]:
            out = []
            for s in range(0, len(idx), 256):
                b = idx[s:s + 256]
                x = data.x_train[b].to(ctx.device).float() / 255.0
                y = data.y_train[b].to(ctx.device)
                out.append(to_levels(pgd_linf(model, x, y, cfg.eps / 255, cfg.step_size / 255, cfg.steps)).cpu())
            return {"index": idx, "adv": torch.cat(out) if out else data.x_train[:0]}

        t = ctx.artifacts.get_or_build("lc-adversarial", key, build)
        self._set(t["index"], t["adv"])

    def _set(self, index: torch.Tensor, adv: torch.Tensor) -> None:
        self.adv_index = index.to(self.ctx.device, torch.long)
        self.adv = adv.to(self.ctx.device, torch.uint8)

    def poison_indices(self, y_train: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        self._pidx = super().poison_indices(y_train, gen)
        return self._pidx

    def adversarial(self, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """The adversarial images of training samples idx (x where a sample has none)."""
        if not len(self.adv_index):
            return x
        idx = idx.to(self.adv_index.device)
        pos = torch.searchsorted(self.adv_index, idx).clamp(max=len(self.adv_index) - 1)
        found = (self.adv_index[pos] == idx).to(x.device)
        adv = self.adv[pos].to(device=x.device, dtype=x.dtype) / 255.0
        return torch.where(found.view(-1, 1, 1, 1), adv, x)

    def apply_trigger(self, x: torch.Tensor, *, train: bool, idx: torch.Tensor | None = None) -> torch.Tensor:
        if train and idx is not None:
            x = self.adversarial(x, idx)
        return add_delta(x, self.delta, self.config.amplitude)

    def state(self) -> dict[str, torch.Tensor]:
        keep = self.adv_index if self._pidx is None else self._pidx.to(self.adv_index.device)
        sel = torch.isin(self.adv_index, keep)
        return {"adv_index": self.adv_index[sel], "adv": self.adv[sel]}

    def load_state(self, tensors: dict[str, torch.Tensor]) -> None:
        self._set(tensors["adv_index"], tensors["adv"])
