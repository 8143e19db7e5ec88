"""Cognitive Distillation (Huang, Ma, Erfani & Bailey, ICLR 2023).

For an image x the model's "cognitive pattern" is the smallest part of x that keeps the model's
output: a mask m in [0, 1]^(H x W) (one channel, shared by the colour channels), learnt by Adam on

    | f(m * x + (1 - m) * noise) - f(x) |_1 / K  +  gamma |m|_p  +  beta TV(m)

with f the logits (K of them), noise a random colour per channel and step, and TV the squared-
difference total variation averaged over the mask's pixels. A backdoored image is classified by its
trigger alone, so its mask is small; a clean image needs much of the object. The suspicion score
is minus the mask's L1 norm; a training image is flagged when its norm is below the clean
reserve's mean norm minus k standard deviations.
"""

from __future__ import annotations

import torch
from torch import nn

from bdcore import Defense, DefenseInputs, DefenseOutput, frozen

from bdb_defense_cd.config import CDConfig


def total_variation(mask: torch.Tensor) -> torch.Tensor:
    """Squared-difference total variation of each mask (B, C, H, W), divided by C * H * W -> (B,)."""
    _, c, h, w = mask.shape
    tv_h = (mask[:, :, 1:, :] - mask[:, :, :-1, :]).pow(2).sum((1, 2, 3))
    tv_w = (mask[:, :, :, 1:] - mask[:, :, :, :-1]).pow(2).sum((1, 2, 3))
    return (tv_h + tv_w) / (c * h * w)


def cd_loss(model: nn.Module, x: torch.Tensor, logits: torch.Tensor, mask: torch.Tensor, noise: torch.Tensor,
            gamma: float, beta: float, p: int) -> torch.Tensor:
    """The per-image objective: output change (mean |logit difference|) + gamma |m|_p + beta TV(m)."""
    out = model(x * mask + (1 - mask) * noise)
    return ((out - logits).abs().mean(1) + gamma * mask.flatten(1).norm(p=p, dim=1)
            + beta * total_variation(mask))


def distil_masks(model: nn.Module, x: torch.Tensor, *, lr: float, p: int, gamma: float, beta: float, steps: int,
                 gen: torch.Generator) -> torch.Tensor:
    """Masks (B, 1, H, W) in [0, 1] that keep the model's logits on x (B, C, H, W) with the fewest pixels."""
    b, c, h, w = x.shape
    with torch.no_grad():
        logits = model(x)
    param = torch.ones(b, 1, h, w, device=x.device, requires_grad=True)  # mask (tanh + 1) / 2 starts at 0.88
    opt = torch.optim.Adam([param], lr=lr, betas=(0.1, 0.1))
    for _ in range(steps):
        mask = (torch.tanh(param) + 1) / 2
        noise = torch.rand(b, c, 1, 1, generator=gen).to(x.device)
        loss = cd_loss(model, x, logits, mask, noise, gamma, beta, p).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return ((torch.tanh(param) + 1) / 2).detach()


class CognitiveDistillation(Defense):
    """Flag training images whose distilled mask is much smaller than clean images' masks."""

    config: CDConfig

    def norms(self, model: nn.Module, data, gen: torch.Generator) -> torch.Tensor:
        """L1 norm of the distilled mask of every image of `data`, in order, on the CPU."""
        c = self.config
        out = [distil_masks(model, x, lr=c.lr, p=c.p, gamma=c.gamma, beta=c.beta, steps=c.steps, gen=gen)
               .flatten(1).sum(1).cpu() for x, _ in data.iter_batches(c.batch_size)]
        return torch.cat(out).double()

    def run(self, inputs: DefenseInputs) -> DefenseOutput:
        c = self.config
        gen = torch.Generator().manual_seed(self.ctx.seed)
        with frozen(inputs.model, channels_last=True) as model:
            clean = self.norms(model, inputs.reserve, gen)
            train = self.norms(model, inputs.train, gen)
        mean, std = float(clean.mean()), float(clean.std())
        threshold = mean - c.k * std
        flagged = train < threshold
        return DefenseOutput(flagged=flagged, scores=(-train).float(), info={
            "threshold": round(threshold, 4), "reserve_norm_mean": round(mean, 4), "reserve_norm_std": round(std, 4),
            "train_norm_median": round(float(train.median()), 4), "flag_count": int(flagged.sum()),
        })
