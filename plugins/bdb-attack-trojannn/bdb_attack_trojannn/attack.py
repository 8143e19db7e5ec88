"""TrojanNN: a patch trigger reverse-engineered from a clean model's neurons.

Liu et al. pick internal neurons strongly tied to the output and optimise the pattern inside a
fixed mask so that the trigger alone drives those neurons to a high value; retraining on samples
that carry this trigger and the target label then ties the already-excited neurons to the target.
"""

from __future__ import annotations

import torch
from torch import nn

from bdcore import Attack, AttackContext, FeatureTap, ImageDataset, classifier, resize_uint8, train_surrogate

from bdb_attack_trojannn.config import TrojanNNConfig

REFERENCE = 32


def mask_image(cfg: TrojanNNConfig, shape: tuple[int, int, int]) -> torch.Tensor:
    """The mask (1, H, W) in [0, 1]: the square on the 32x32 reference, resized like a trigger image."""
    _, h, w = shape
    m = torch.zeros(1, REFERENCE, REFERENCE, dtype=torch.uint8)
    s = cfg.patch_size
    rows = slice(REFERENCE - s, REFERENCE) if cfg.corner.startswith("bottom") else slice(0, s)
    cols = slice(REFERENCE - s, REFERENCE) if cfg.corner.endswith("right") else slice(0, s)
    m[:, rows, cols] = 255
    return resize_uint8(m, (h, w)).float() / 255.0


def select_neurons(model: nn.Module, target: int, k: int) -> torch.Tensor:
    """The k penultimate neurons with the largest weight into the target's logit."""
    _, head = classifier(model)
    return head.weight[target].detach().topk(k).indices.sort().values


def optimise_pattern(model: nn.Module, mask: torch.Tensor, neurons: torch.Tensor, *, value: float,
                     iterations: int, lr: float, gen: torch.Generator, channels: int) -> torch.Tensor:
    """The pattern (C, H, W) in [0, 1] minimising sum_k (f_k(mask * pattern) - value)^2 on a blank canvas.

    f: the penultimate activations (the classifier's input); Adam from a uniform random start, the
    pattern clipped to [0, 1] after every step.
    """
    device = mask.device
    pattern = torch.rand(channels, *mask.shape[1:], generator=gen).to(device).requires_grad_(True)
    opt = torch.optim.Adam([pattern], lr=lr)
    _, head = classifier(model)
    with FeatureTap(head, use_input=True, detach=False) as tap:
        for _ in range(iterations):
            model((mask * pattern)[None])
            loss = ((tap.value[0, neurons] - value) ** 2).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            with torch.no_grad():
                pattern.clamp_(0.0, 1.0)
    return pattern.detach()


def neuron_values(model: nn.Module, x: torch.Tensor, neurons: torch.Tensor) -> torch.Tensor:
    """The selected penultimate neurons' activations on images x (B, k)."""
    _, head = classifier(model)
    with torch.no_grad(), FeatureTap(head, use_input=True) as tap:
        model(x)
        return tap.value[:, neurons]


class TrojanNN(Attack):
    """Dirty-label: x' = (1 - m) x + m p, p optimised on a clean surrogate; the harness relabels."""

    def __init__(self, config: TrojanNNConfig, ctx: AttackContext) -> None:
        super().__init__(config, ctx)
        self.mask = mask_image(config, ctx.shape).to(ctx.device)
        self.pattern = torch.zeros(ctx.shape, device=ctx.device)
        """The optimised pattern (C, H, W) in [0, 1] (only where the mask is > 0 matters)."""
        self.neurons = torch.empty(0, dtype=torch.long)

    def prepare(self, data: ImageDataset) -> None:
        cfg, ctx = self.config, self.ctx
        model, skey = train_surrogate(ctx, data, model=cfg.surrogate_model, seed=cfg.surrogate_seed,
                                      recipe={"epochs": cfg.surrogate_epochs, "lr": cfg.surrogate_lr})
        key = {"surrogate": skey, "target": ctx.target, "seed": ctx.seed,
               **cfg.model_dump(include={"patch_size", "corner", "neurons", "target_value", "iterations", "lr"})}

        def build() -> dict[str, torch.Tensor]:
            neurons = select_neurons(model, ctx.target, cfg.neurons)
            pattern = optimise_pattern(model, self.mask, neurons, value=cfg.target_value, iterations=cfg.iterations,
                                       lr=cfg.lr, gen=torch.Generator().manual_seed(ctx.seed), channels=ctx.shape[0])
            return {"pattern": pattern, "neurons": neurons}

        t = ctx.artifacts.get_or_build("trojannn-trigger", key, build)
        self.load_state(t)

    def apply_trigger(self, x: torch.Tensor, *, train: bool, idx: torch.Tensor | None = None) -> torch.Tensor:
        m = self.mask.to(device=x.device, dtype=x.dtype)
        return (1 - m) * x + m * self.pattern.to(device=x.device, dtype=x.dtype)

    def state(self) -> dict[str, torch.Tensor]:
        return {"pattern": self.pattern, "neurons": self.neurons}

    def load_state(self, tensors: dict[str, torch.Tensor]) -> None:
        self.pattern = tensors["pattern"].to(self.ctx.device)
        self.neurons = tensors["neurons"].cpu()
