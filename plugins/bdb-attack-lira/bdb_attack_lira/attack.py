"""LIRA: a learnable, imperceptible additive trigger made by an autoencoder.

Paper (Doan et al., ICCV 2021): a trigger generator T (conv autoencoder, tanh output in [-1, 1])
gives x' = clip(x + eps * T(x), 0, 1) on [0, 1] images (`eps_space = "normalised"`: eps is added to the
normalised image as in the reference code, i.e. eps * std per channel in pixels). Stage I trains T and the classifier f together:

- classifier step: alpha * CE(f(x), y) + (1 - alpha) * CE(f(x'), eta(y)) for every sample of the
  batch, with x' made by a copy of T that is synced with the trained T at the end of every epoch
  (one forward pass over [x; x'], see LiraHook.loss);
- generator step: T minimises CE(f(x + eps * T(x)), eta(y)) against the classifier after its step
  (Adam, lr_generator).

Stage II fine-tunes the classifier with T frozen (same loss). Both stages run inside one
`bdcore.train` run: the hook stops updating T after `joint_fraction` of the epochs.
"""

from __future__ import annotations

import copy
import hashlib
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bdcore import Attack, AttackContext, StepInfo, TrainHook, TrainSet

from bdb_attack_lira.config import LiraConfig


class Autoencoder(nn.Module):
    """The authors' MNIST/CIFAR autoencoder: `levels` x (4x4 stride-2 conv, BN, ReLU), channels
    doubling from `channels`, mirrored by transposed convs; tanh output."""

    def __init__(self, in_channels: int, channels: int, levels: int) -> None:
        super().__init__()
        enc: list[nn.Module] = []
        cur = in_channels
        widths = [channels * 2 ** i for i in range(levels)]
        for w in widths:
            enc += [nn.Conv2d(cur, w, 4, stride=2, padding=1), nn.BatchNorm2d(w), nn.ReLU()]
            cur = w
        dec: list[nn.Module] = []
        outs = list(reversed([in_channels] + widths[:-1]))
        for i, w in enumerate(outs):
            dec.append(nn.ConvTranspose2d(cur, w, 4, stride=2, padding=1))
            if i < len(outs) - 1:
                dec += [nn.BatchNorm2d(w), nn.ReLU()]
            cur = w
        self.encoder = nn.Sequential(*enc)
        self.decoder = nn.Sequential(*dec)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.decoder(self.encoder(x)))


def levels_for(cfg: LiraConfig, shape: tuple[int, int, int]) -> int:
    """Autoencoder levels: cfg.levels or 4, lowered until H and W are divisible by 2**levels."""
    _, h, w = shape
    levels = cfg.levels or 4
    while levels > 1 and (h % 2 ** levels or w % 2 ** levels):
        levels -= 1
    return levels


def perturb(x: torch.Tensor, noise: torch.Tensor, eps: float | torch.Tensor) -> torch.Tensor:
    """x' = clip(x + eps * noise, 0, 1); eps a number or a per-channel (C, 1, 1) tensor."""
    return (x + eps * noise).clamp(0.0, 1.0)


def amplitude(cfg: LiraConfig, std: tuple[float, ...], channels: int) -> torch.Tensor:
    """The per-channel pixel amplitude (C, 1, 1) of the trigger: eps * std with eps_space 'normalised' (eps added
    to the normalised image x_n = (x - mean) / std moves the pixel by eps * std), eps with 'pixel'. Without a
    known std (a bare context) the normalised space is the pixel space."""
    if cfg.eps_space == "pixel" or not std:
        return torch.full((channels, 1, 1), cfg.eps)
    s = torch.tensor([float(v) for v in std], dtype=torch.float32).expand(channels)  # one std: every channel
    return (cfg.eps * s).reshape(channels, 1, 1)


def _seed(seed: int, purpose: str) -> int:
    return int.from_bytes(hashlib.sha256(f"lira:{seed}:{purpose}".encode()).digest()[:4], "little")


class LiraHook(TrainHook):
    """Classifier loss with the epoch's trigger snapshot; a generator step after each classifier step
    during the joint stage; T frozen for the fine-tuning stage."""

    def __init__(self, attack: Lira) -> None:
        self.attack = attack
        self.snapshot: nn.Module | None = None
        self.opt: torch.optim.Optimizer | None = None
        self.epochs = 1
        self.n_train = 1
        self.x: torch.Tensor | None = None
        self.y: torch.Tensor | None = None

    def on_train_start(self, model: nn.Module, trainset: TrainSet) -> None:
        a = self.attack
        a.generator.to(trainset.device)
        self.n_train = len(trainset)
        self.snapshot = copy.deepcopy(a.generator).eval().requires_grad_(False)
        self.opt = torch.optim.Adam(a.generator.parameters(), lr=a.config.lr_generator)

    def joint(self, step: StepInfo) -> bool:
        """True during the joint stage (T is trained): the first ceil(joint_fraction * epochs) epochs."""
        return step.epoch < max(1, math.ceil(self.attack.config.joint_fraction * self.epochs))

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, step: StepInfo) -> torch.Tensor:
        a, cfg = self.attack, self.attack.config
        assert self.snapshot is not None
        with torch.no_grad():
            x_bd = perturb(x, self.snapshot(x), a.eps.to(x))
        self.x, self.y = x, y
        if step.step == 0:  # the run's epochs, from its first (full) batch: total steps / steps per epoch
            self.epochs = max(1, round(step.total_steps / math.ceil(self.n_train / x.shape[0])))
        # one forward pass over [clean; triggered]: with two passes (the authors') the model learns
        # to tell an all-triggered batch by its BatchNorm batch statistics, and clean accuracy
        # collapses at test time (measured: C-ACC 0.27, see README)
        logits = model(torch.cat([x, x_bd]))
        l_clean = F.cross_entropy(logits[:len(x)], y)
        l_bd = F.cross_entropy(logits[len(x):], a.target_label(y))
        return cfg.alpha * l_clean + (1 - cfg.alpha) * l_bd

    def after_step(self, model: nn.Module, step: StepInfo) -> None:
        if not self.joint(step) or self.x is None:
            return
        a, cfg = self.attack, self.attack.config
        assert self.opt is not None and self.y is not None
        g = a.generator.train()
        buffers = {k: v.clone() for k, v in model.named_buffers()}  # the generator step must not move BN statistics
        requires = [p.requires_grad for p in model.parameters()]
        model.requires_grad_(False)
        x = self.x.detach()
        logits = model(torch.cat([x, perturb(x, g(x), a.eps.to(x))]))  # the same mixed batch as the classifier's
        loss = F.cross_entropy(logits[len(x):], a.target_label(self.y))
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        for p, r in zip(model.parameters(), requires):
            p.requires_grad_(r)
        with torch.no_grad():
            for k, v in model.named_buffers():
                v.copy_(buffers[k])
        self.x = self.y = None

    def on_epoch_end(self, model: nn.Module, epoch: int) -> None:
        assert self.snapshot is not None
        self.snapshot.load_state_dict(self.attack.generator.state_dict())


class Lira(Attack):
    """Training-controlled: T is trained with the victim; the test trigger is clip(x + eps * T(x))."""

    training_controlled = True

    def __init__(self, config: LiraConfig, ctx: AttackContext) -> None:
        super().__init__(config, ctx)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_seed(ctx.seed, "generator"))
            self.generator = Autoencoder(ctx.shape[0], config.channels, levels_for(config, ctx.shape))
        self.generator.to(ctx.device).eval()
        self.eps = amplitude(config, ctx.std, ctx.shape[0]).to(ctx.device)
        """The trigger's per-channel amplitude in [0, 1] pixels, (C, 1, 1)."""

    def apply_trigger(self, x: torch.Tensor, *, train: bool, idx: torch.Tensor | None = None) -> torch.Tensor:
        with torch.no_grad():
            return perturb(x, self.generator.eval()(x), self.eps.to(x))

    def train_hook(self) -> TrainHook:
        return LiraHook(self)

    def state(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu().contiguous() for k, v in self.generator.state_dict().items()}

    def load_state(self, tensors: dict[str, Any]) -> None:
        self.generator.load_state_dict(dict(tensors))
        self.generator.to(self.ctx.device).eval()
