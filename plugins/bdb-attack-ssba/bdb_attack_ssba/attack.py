"""Sample-Specific Backdoor Attack (SSBA): an invisible trigger that differs for every image.

Li et al. take an image-steganography network (StegaStamp, Tancik et al. CVPR 2020): an encoder
adds a residual to an image that hides a code, a decoder recovers the code, and an image loss
keeps the residual invisible. Trained on the attacker's data, the encoder then hides one fixed
code (e.g. the target's name) in the poisoned images; the residual is the trigger, different for
every image yet carrying the same code, which the victim learns to read.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bdcore import (Attack, AttackContext, ImageDataset, StepInfo, TrainHook, TrainRecipe, TrainSet, data_fingerprint,
                    train as train_model)

from bdb_attack_ssba.config import SSBAConfig


def _conv(i: int, o: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(i, o, 3, stride=stride, padding=1), nn.ReLU(inplace=True))


class Encoder(nn.Module):
    """StegaStamp-style U-Net: the code goes through a dense layer to a (C, H/4, W/4) map, is upsampled to the
    image size and concatenated with the image (both shifted by -0.5); the output is the residual (C, H, W)."""

    def __init__(self, channels: int, bits: int, size: tuple[int, int], width: int = 32) -> None:
        super().__init__()
        h, w = size
        self.size, self.small = size, (max(1, h // 4), max(1, w // 4))
        self.channels = channels
        self.secret = nn.Linear(bits, channels * self.small[0] * self.small[1])
        self.c1 = _conv(2 * channels, width)
        self.c2 = _conv(width, 2 * width, 2)
        self.c3 = _conv(2 * width, 4 * width, 2)
        self.u2 = _conv(4 * width, 2 * width)
        self.m2 = _conv(4 * width, 2 * width)
        self.u1 = _conv(2 * width, width)
        self.m1 = _conv(2 * width + 2 * channels, width)
        self.out = nn.Conv2d(width, channels, 1)

    def forward(self, x: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        s = F.relu(self.secret(code - 0.5)).view(-1, self.channels, *self.small)
        s = F.interpolate(s, size=self.size, mode="nearest")
        inp = torch.cat([s, x - 0.5], 1)
        a = self.c1(inp)
        b = self.c2(a)
        c = self.c3(b)
        u = self.u2(F.interpolate(c, size=b.shape[-2:], mode="nearest"))
        u = self.m2(torch.cat([b, u], 1))
        u = self.u1(F.interpolate(u, size=a.shape[-2:], mode="nearest"))
        u = self.m1(torch.cat([a, u, inp], 1))
        return self.out(u)


class Decoder(nn.Module):
    """Strided convolutions and two dense layers: code logits (bits) from an image."""

    def __init__(self, channels: int, bits: int, size: tuple[int, int], width: int = 32) -> None:
        super().__init__()
        self.body = nn.Sequential(_conv(channels, width, 2), _conv(width, width), _conv(width, 2 * width, 2),
                                  _conv(2 * width, 2 * width), _conv(2 * width, 4 * width, 2), nn.Flatten())
        with torch.no_grad():
            n = self.body(torch.zeros(1, channels, *size)).shape[1]
        self.head = nn.Sequential(nn.Linear(n, 512), nn.ReLU(inplace=True), nn.Linear(512, bits))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x - 0.5))


class StegaNet(nn.Module):
    """Encoder and decoder as one module (what the shared trainer optimises)."""

    def __init__(self, channels: int, bits: int, size: tuple[int, int], width: int = 32) -> None:
        super().__init__()
        self.encoder = Encoder(channels, bits, size, width)
        self.decoder = Decoder(channels, bits, size, width)

    def encode(self, x: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        """clip(x + residual): the image hiding the code (code (B, bits) or (bits,) of 0/1)."""
        if code.dim() == 1:
            code = code.expand(len(x), -1)
        return (x + self.encoder(x, code.to(x.dtype))).clamp(0.0, 1.0)


def image_weight_at(cfg: SSBAConfig, step: int, total: int) -> float:
    """The image loss's weight: 0 for the first secret_only share of the steps, then a linear ramp to
    image_weight over the next image_ramp share."""
    start, ramp = cfg.secret_only * total, cfg.image_ramp * total
    if step < start:
        return 0.0
    return cfg.image_weight * (min(1.0, (step - start) / ramp) if ramp > 0 else 1.0)


class StegaLoss(TrainHook):
    """The steganography loss in place of cross-entropy: random codes per image (from the trainer's generator),
    loss = secret_weight * BCE(D(clip(x + r)), s) + image_weight(t) * mean r^2, r = E(x, s) the residual."""

    def __init__(self, cfg: SSBAConfig) -> None:
        self.cfg = cfg

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, step: StepInfo) -> torch.Tensor:
        cfg = self.cfg
        code = torch.randint(0, 2, (len(x), cfg.bits), generator=step.gen).to(x.device, x.dtype)
        residual = model.encoder(x, code)
        secret = F.binary_cross_entropy_with_logits(model.decoder((x + residual).clamp(0.0, 1.0)), code)
        image = residual.pow(2).mean()  # unclipped, so that a saturated residual is still pulled back
        return cfg.secret_weight * secret + image_weight_at(cfg, step.step, step.total_steps) * image


def fixed_code(bits: int, seed: int) -> torch.Tensor:
    """The code hidden in every poisoned image: bits fair coin flips (0/1 floats) drawn from seed."""
    return torch.randint(0, 2, (bits,), generator=torch.Generator().manual_seed(seed)).float()


@torch.no_grad()
def bit_accuracy(net: StegaNet, x: torch.Tensor, code: torch.Tensor, batch_size: int = 256) -> float:
    """Share of the code's bits the decoder recovers from the encoded images x (mean over images)."""
    hits, n = 0.0, 0
    for s in range(0, len(x), batch_size):
        xb = x[s:s + batch_size]
        pred = (net.decoder(net.encode(xb, code)) > 0).float()
        hits += float((pred == code.to(pred)).float().mean(1).sum())
        n += len(xb)
    return hits / max(1, n)


class SampleSpecific(Attack):
    """Dirty-label: x' = clip(x + E(x, code)) with the trained encoder and a fixed code; the harness relabels."""

    def __init__(self, config: SSBAConfig, ctx: AttackContext) -> None:
        super().__init__(config, ctx)
        c, h, w = ctx.shape
        self.net = StegaNet(c, config.bits, (h, w), config.width).to(ctx.device).eval()
        self.code = fixed_code(config.bits, config.code_seed).to(ctx.device)
        self.bit_acc = float("nan")
        """Share of the fixed code's bits the decoder recovers from encoded training images (after prepare)."""

    def prepare(self, data: ImageDataset) -> None:
        cfg, ctx = self.config, self.ctx
        key = {"dataset": data.name, "fingerprint": data_fingerprint(data), "shape": list(data.shape),
               **cfg.model_dump(exclude={"code_seed"})}

        def build() -> dict[str, torch.Tensor]:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(cfg.encoder_seed)
                c, h, w = data.shape
                net = StegaNet(c, cfg.bits, (h, w), cfg.width)
            recipe = TrainRecipe(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, optimizer="adam",
                                 weight_decay=0.0, schedule="constant", augment=False)
            train_model(net, TrainSet(data.x_train, data.y_train, hflip=data.hflip, device=ctx.device), recipe,
                  seed=cfg.encoder_seed, hooks=[StegaLoss(cfg)],
                  progress=lambda done, total, _loss: self.report("ssba encoder", done, total))
            return {f"net.{k}": v for k, v in net.state_dict().items()}

        self.load_state(ctx.artifacts.get_or_build("ssba-encoder", key, build))
        self.bit_acc = bit_accuracy(self.net, data.x_train[:512].to(ctx.device).float() / 255.0, self.code)

    @torch.no_grad()
    def apply_trigger(self, x: torch.Tensor, *, train: bool, idx: torch.Tensor | None = None) -> torch.Tensor:
        out = []
        for s in range(0, len(x), 512):
            xb = x[s:s + 512]
            out.append(self.net.encode(xb.to(self.ctx.device, torch.float32), self.code).to(device=x.device, dtype=x.dtype))
        return torch.cat(out) if out else x

    def state(self) -> dict[str, torch.Tensor]:
        return {**{f"net.{k}": v for k, v in self.net.state_dict().items()}, "code": self.code}

    def load_state(self, tensors: dict[str, torch.Tensor]) -> None:
        self.net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")})
        self.net.to(self.ctx.device).eval()
        if "code" in tensors:
            self.code = tensors["code"].to(self.ctx.device)
