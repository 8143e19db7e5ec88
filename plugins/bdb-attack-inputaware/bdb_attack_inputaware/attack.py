"""Input-Aware Dynamic Backdoor: each image gets its own trigger, made by two networks.

Paper (Nguyen & Tran, NeurIPS 2020): a pattern generator G and a mask network M, both small conv
encoder-decoders. The backdoor image is

    x' = x + M(x) * (G(x) - x)        (the mask blends the image's own pattern in)

where G's output is squashed to (0, 1) and M's output is squashed and then sharpened by the
threshold tanh(20 m - 10) / (2 + eps) + 0.5. Training has two stages:

1. mask pre-training (`mask_epochs`): M alone minimises
   lambda_norm * mean(relu(m(x1) - density)) + lambda_div * mean(||x1 - x2|| / (||m(x1) - m(x2)|| + eps))
   (sparse masks that differ between images); here it runs in `prepare` through `bdcore.train`
   with M as the trained network and a loss hook;
2. joint training: M is frozen; in every batch int(pratio * B) samples get their own backdoor (target
   label; where pratio * B < 1, one sample with probability pratio * B, as the reference's
   `generalize_to_lower_pratio`), cross_ratio times as many get the pattern and mask of *another*
   image (label kept: the trigger of one image must not work on another), the rest stays clean.
   The classifier loss is cross-entropy plus lambda_div times the diversity loss of the patterns; G
   has its own Adam optimiser stepped after the classifier's step inside the same trainer step.

||a - b|| is the root mean square over (C, H, W), as in the authors' code.
"""

from __future__ import annotations

import hashlib
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bdcore import Attack, AttackContext, ImageDataset, StepInfo, TrainHook, TrainRecipe, TrainSet, train

from bdb_attack_inputaware.config import InputAwareConfig

EPSILON = 1e-7
BETAS = (0.5, 0.9)
"""Adam betas of the authors' generator optimiser."""


def _block(cin: int, cout: int, relu: bool = True) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout, momentum=0.05)]
    if relu:
        layers.append(nn.ReLU())
    return layers


def squash(x: torch.Tensor) -> torch.Tensor:
    """tanh(x) / (2 + eps) + 0.5: the generators' output range (0, 1)."""
    return torch.tanh(x) / (2 + EPSILON) + 0.5


def threshold(m: torch.Tensor) -> torch.Tensor:
    """The mask's sharpening: tanh(20 m - 10) / (2 + eps) + 0.5, a soft step at 0.5."""
    return torch.tanh(m * 20 - 10) / (2 + EPSILON) + 0.5


class EncoderDecoder(nn.Sequential):
    """The authors' generator: `steps` x (2 conv blocks, max-pool), a middle block, `steps` x
    (bilinear upsample, 2 conv blocks); conv blocks are 3x3 conv + BN + ReLU (the last without ReLU).
    Output squashed to (0, 1)."""

    def __init__(self, in_channels: int, out_channels: int, channels: int, steps: int) -> None:
        layers: list[nn.Module] = []
        cur, nxt = in_channels, channels
        for s in range(steps):
            layers += _block(cur, nxt) + _block(nxt, nxt) + [nn.MaxPool2d(2)]
            if s < steps - 1:
                cur, nxt = nxt, nxt * 2
        layers += _block(nxt, nxt)
        cur = nxt
        nxt = cur // 2
        for s in range(steps):
            last = s == steps - 1
            layers += [nn.Upsample(scale_factor=2, mode="bilinear")] + _block(cur, cur)
            layers += _block(cur, out_channels if last else nxt, relu=not last)
            cur, nxt = nxt, nxt // 2
        super().__init__(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return squash(super().forward(x))


def architecture(cfg: InputAwareConfig, shape: tuple[int, int, int]) -> tuple[int, int]:
    """(channels, steps) of G and M: the authors' MNIST networks (16, 2) up to 28x28, else (32, 3);
    steps are lowered until the image side is divisible by 2**steps."""
    _, h, w = shape
    small = max(h, w) <= 28
    channels = cfg.channels or (16 if small else 32)
    steps = cfg.steps or (2 if small else 3)
    while steps > 1 and (h % 2 ** steps or w % 2 ** steps):
        steps -= 1
    return channels, steps


def rms_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-sample root mean square difference over (C, H, W)."""
    return (a - b).pow(2).flatten(1).mean(1).sqrt()


def diversity_loss(x1: torch.Tensor, x2: torch.Tensor, g1: torch.Tensor, g2: torch.Tensor) -> torch.Tensor:
    """mean(||x1 - x2|| / (||g1 - g2|| + eps)): large when different images get similar outputs."""
    return (rms_distance(x1, x2) / (rms_distance(g1, g2) + EPSILON)).mean()


def norm_loss(mask: torch.Tensor, density: float) -> torch.Tensor:
    """mean(relu(mask - density)): penalises mask values above the density."""
    return F.relu(mask - density).mean()


def blend(x: torch.Tensor, pattern: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """x' = x + mask * (pattern - x)."""
    return x + mask * (pattern - x)


def batch_counts(batch: int, pratio: float, cross_ratio: float, u: float) -> tuple[int, int]:
    """(backdoor, cross) samples of a batch, the reference's rule: int(pratio * B) backdoor samples, or, where
    pratio * B < 1, one with probability pratio * B (u: a uniform draw in [0, 1)); int(backdoor * cross_ratio)
    cross samples, at most the rest of the batch."""
    share = pratio * batch
    n_bd = int(share) if share >= 1 else int(u < share)
    return n_bd, min(int(n_bd * cross_ratio), batch - n_bd)


def _seed(seed: int, purpose: str) -> int:
    return int.from_bytes(hashlib.sha256(f"inputaware:{seed}:{purpose}".encode()).digest()[:4], "little")


class MaskPretrainHook(TrainHook):
    """Turns `bdcore.train` into mask pre-training: the loss is the norm + diversity loss of M.

    The second image of each pair is the batch rolled by one (the batch order is already a seeded
    random permutation), so M runs once per batch.
    """

    def __init__(self, cfg: InputAwareConfig) -> None:
        self.cfg = cfg

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, step: StepInfo) -> torch.Tensor:
        m1 = threshold(model(x))
        m2 = m1.roll(1, 0)
        div = diversity_loss(x, x.roll(1, 0), m1, m2)
        return self.cfg.lambda_norm * norm_loss(m1, self.cfg.mask_density) + self.cfg.lambda_div * div


class InputAwareHook(TrainHook):
    """Builds the backdoor / cross / clean batch, adds the diversity loss, steps G after the classifier."""

    def __init__(self, attack: InputAware) -> None:
        self.attack = attack
        self.div: torch.Tensor | None = None
        self.opt: torch.optim.Optimizer | None = None
        self.poisoned = 0
        """Backdoor + cross samples made so far (over all epochs)."""

    def on_train_start(self, model: nn.Module, trainset: TrainSet) -> None:
        a = self.attack
        a.generator.to(trainset.device).train()
        a.mask_net.to(trainset.device).eval().requires_grad_(False)
        self.opt = torch.optim.Adam(a.generator.parameters(), lr=a.config.lr_generator, betas=BETAS)

    def counts(self, batch: int, gen: torch.Generator) -> tuple[int, int]:
        """(backdoor, cross) samples in a batch of this size (`batch_counts`; a uniform is drawn from gen only
        where pratio * B < 1)."""
        a = self.attack
        u = float(torch.rand(1, generator=gen)) if a.ctx.pratio * batch < 1 else 0.0
        return batch_counts(batch, a.ctx.pratio, a.config.cross_ratio, u)

    def on_batch(self, x: torch.Tensor, y: torch.Tensor, step: StepInfo) -> tuple[torch.Tensor, torch.Tensor]:
        a = self.attack
        self.div = None
        n_bd, n_cross = self.counts(x.shape[0], step.gen)
        self.poisoned += n_bd + n_cross
        if n_bd == 0:
            return x, y
        g, m = a.generator.train(), a.mask_net
        xb = x[:n_bd]
        p1 = g(xb)
        with torch.no_grad():
            m1 = threshold(m(xb))
        parts = [blend(xb, p1, m1)]
        if n_cross:
            # "another image": the batch rolled by half its size (a different, random sample)
            xc = x[n_bd:n_bd + n_cross]
            other = x.roll(x.shape[0] // 2, 0)[n_bd:n_bd + n_cross]
            p2 = g(other)
            with torch.no_grad():
                m2 = threshold(m(other))
            parts.append(blend(xc, p2, m2))
            k = min(n_bd, n_cross)
            self.div = a.config.lambda_div * diversity_loss(xb[:k], other[:k], p1[:k], p2[:k])
        parts.append(x[n_bd + n_cross:])
        y = torch.cat([a.target_label(y[:n_bd]), y[n_bd:]])
        return torch.cat(parts), y

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, step: StepInfo) -> torch.Tensor:
        ce = F.cross_entropy(model(x), y)
        return ce if self.div is None else ce + self.div

    def after_step(self, model: nn.Module, step: StepInfo) -> None:
        # the trainer's backward pass left the same loss's gradients on G: step it, as the authors
        # step optimizerG right after optimizerC
        assert self.opt is not None
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        self.div = None


class InputAware(Attack):
    """Training-controlled: G and M are trained with the victim; the test trigger is x + M(x)(G(x) - x).

    The materialised poisoned training set is one pass of the batch rule over the training set, as the
    reference stores it: backdoor samples (own trigger, target label) and cross samples (another image's
    trigger, own label), both counted as poisoned (`cross_idx` says which are cross).
    """

    training_controlled = True

    def __init__(self, config: InputAwareConfig, ctx: AttackContext) -> None:
        super().__init__(config, ctx)
        c, _, _ = ctx.shape
        channels, steps = architecture(config, ctx.shape)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_seed(ctx.seed, "generator"))
            self.generator = EncoderDecoder(c, c, channels, steps)
            torch.manual_seed(_seed(ctx.seed, "mask"))
            self.mask_net = EncoderDecoder(c, 1, channels, steps)
        self.generator.to(ctx.device).eval()
        self.mask_net.to(ctx.device).eval()
        self.cross_idx = torch.empty(0, dtype=torch.long)
        """Training indices of the materialised cross samples (sorted; set by poison_indices, kept in state)."""
        self.cross_other = torch.empty(0, *ctx.shape, dtype=torch.uint8)
        """The other image (uint8) whose pattern and mask each cross sample carries."""
        self._x_train: torch.Tensor | None = None

    def prepare(self, data: ImageDataset) -> None:
        """Mask pre-training: M alone, through the shared trainer with the norm + diversity loss."""
        cfg = self.config
        self._x_train = data.x_train
        if cfg.mask_epochs == 0:
            return
        recipe = TrainRecipe(epochs=cfg.mask_epochs, batch_size=cfg.mask_batch_size, lr=cfg.lr_mask, optimizer="adam",
                             weight_decay=0.0, schedule="cosine", augment=True, channels_last=False)
        trainset = TrainSet(data.x_train, data.y_train, hflip=data.hflip, device=self.ctx.device)
        train(self.mask_net, trainset, recipe, seed=_seed(self.ctx.seed, "mask-train"), hooks=[MaskPretrainHook(cfg)])
        self.mask_net.eval()

    def masks(self, x: torch.Tensor) -> torch.Tensor:
        """The thresholded masks M(x), (B, 1, H, W), eval mode."""
        with torch.no_grad():
            return threshold(self.mask_net.eval()(x))

    def poison_indices(self, y_train: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """One pass of the batch rule (`batch_counts`) over the training set (`poison_order`: a seeded random
        order or file order) in batches of the victim's size: in each batch the first samples are backdoor
        samples, the next cross samples (each paired with another random training image); returns both, sorted."""
        n, b = len(y_train), self.ctx.batch_size
        order = torch.randperm(n, generator=gen) if self.config.poison_order == "random" else torch.arange(n)
        bd, cross = [], []
        for s in range(0, n, b):
            part = order[s:s + b]
            n_bd, n_cross = batch_counts(len(part), self.ctx.pratio, self.config.cross_ratio,
                                         float(torch.rand(1, generator=gen)))
            bd.append(part[:n_bd])
            cross.append(part[n_bd:n_bd + n_cross])
        cross_idx = torch.cat(cross).sort().values if cross else torch.empty(0, dtype=torch.long)
        other = (cross_idx + 1 + torch.randint(0, max(1, n - 1), (len(cross_idx),), generator=gen)) % n
        if len(cross_idx) and self._x_train is None:
            raise RuntimeError("inputaware: prepare(data) must run before poison_indices (cross samples need images)")
        self.cross_idx = cross_idx
        self.cross_other = self._x_train[other].cpu() if len(cross_idx) else self.cross_other[:0]
        return torch.cat(bd + [cross_idx]).sort().values if bd else cross_idx

    def poison_x(self, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """Backdoor samples: their own trigger; cross samples: x + M(x_o)(G(x_o) - x) with their other image x_o."""
        out = self.apply_trigger(x, train=True, idx=idx)
        is_cross = torch.isin(idx.cpu(), self.cross_idx)
        if bool(is_cross.any()):
            pos = torch.searchsorted(self.cross_idx, idx.cpu()[is_cross])
            other = self.cross_other[pos].to(x.device).float() / 255.0
            sel = is_cross.to(x.device)
            with torch.no_grad():
                out[sel] = blend(x[sel], self.generator.eval()(other), self.masks(other))
        return out

    def poison_y(self, y: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """Backdoor samples get the target label; cross samples keep theirs."""
        is_cross = torch.isin(idx, self.cross_idx.to(idx.device))
        return torch.where(is_cross, y, self.target_label(y))

    def apply_trigger(self, x: torch.Tensor, *, train: bool, idx: torch.Tensor | None = None) -> torch.Tensor:
        with torch.no_grad():
            self.generator.eval()
            return blend(x, self.generator(x), self.masks(x))

    def train_hook(self) -> TrainHook:
        return InputAwareHook(self)

    def state(self) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        for prefix, net in (("generator.", self.generator), ("mask.", self.mask_net)):
            out.update({prefix + k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()})
        out["cross_idx"] = self.cross_idx.contiguous()
        out["cross_other"] = self.cross_other.contiguous()
        return out

    def load_state(self, tensors: dict[str, Any]) -> None:
        for prefix, net in (("generator.", self.generator), ("mask.", self.mask_net)):
            net.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
            net.to(self.ctx.device).eval()
        if "cross_idx" in tensors:
            self.cross_idx = tensors["cross_idx"].long().cpu()
            self.cross_other = tensors["cross_other"].to("cpu", torch.uint8)
