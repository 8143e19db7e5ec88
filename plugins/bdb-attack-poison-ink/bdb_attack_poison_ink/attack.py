"""Poison Ink: the image's own edge structure, coloured, hidden in the image as the trigger.

Zhang et al. extract the edges of each image (structure that survives the usual augmentations),
colour them with a trigger colour, and hide this coloured edge image in the image with an
injection network; an extraction network, trained with it, recovers the coloured edges from the
poisoned ("container") image and a blank image from a clean one, which makes the hidden trigger
a learnable feature. Poisoned samples are the containers with the target label.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from bdcore import (Attack, AttackContext, ImageDataset, StepInfo, TrainHook, TrainRecipe, TrainSet, data_fingerprint,
                    train as train_model)

from bdb_attack_poison_ink.config import PoisonInkConfig

LUMA = (0.299, 0.587, 0.114)
"""BT.601 luma weights of R, G, B."""


def gray(x: torch.Tensor) -> torch.Tensor:
    """Luma (B, 1, H, W) of images (B, C, H, W): BT.601 for RGB, the image itself for one channel."""
    if x.shape[1] == 1:
        return x
    w = torch.tensor(LUMA, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x[:, :3] * w).sum(1, keepdim=True)


def _filter(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    p = k.shape[-1] // 2
    return F.conv2d(F.pad(x, (p, p, p, p), mode="replicate"), k.view(1, 1, *k.shape).to(x))


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian smoothing of (B, 1, H, W): window 2 * ceil(2 sigma) + 1, borders replicated."""
    r = math.ceil(2 * sigma)
    i = torch.arange(-r, r + 1, dtype=torch.float64)
    g = torch.exp(-(i**2) / (2 * sigma**2))
    g = g / g.sum()
    return _filter(x, (g[:, None] * g[None, :]).float())


SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
"""Sobel kernel of the horizontal derivative (columns increase to the right); its transpose is the vertical one."""

# neighbour offsets (dy, dx) along the gradient direction, for directions 0, 45, 90, 135 degrees
# (angles of (gx, gy), rows increasing downwards)
_OFFSETS = ((0, 1), (1, 1), (1, 0), (1, -1))


def _shift(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """x[..., i + dy, j + dx] at (i, j), zero outside."""
    h, w = x.shape[-2:]
    out = torch.zeros_like(x)
    ys, yd = (slice(dy, h), slice(0, h - dy)) if dy >= 0 else (slice(0, h + dy), slice(-dy, h))
    xs, xd = (slice(dx, w), slice(0, w - dx)) if dx >= 0 else (slice(0, w + dx), slice(-dx, w))
    out[..., yd, xd] = x[..., ys, xs]
    return out


def canny(x: torch.Tensor, sigma: float = 1.0, low: float = 0.1, high: float = 0.2) -> torch.Tensor:
    """Canny edges (B, 1, H, W) in {0, 1} of images (B, C, H, W) in [0, 1].

    Luma -> Gaussian smoothing -> Sobel gradients -> non-maximum suppression along the gradient
    direction (quantised to 0/45/90/135 degrees; a pixel stays if no neighbour on that line is
    larger) -> double threshold at low and high times each image's largest magnitude -> hysteresis
    (weak edges 8-connected to strong ones are kept).
    """
    g = gaussian_blur(gray(x.float()), sigma)
    gx = _filter(g, SOBEL_X)
    gy = _filter(g, SOBEL_X.t().contiguous())
    mag = torch.hypot(gx, gy)
    angle = torch.rad2deg(torch.atan2(gy, gx)) % 180.0
    sector = (((angle + 22.5) // 45.0) % 4).long()
    keep = torch.zeros_like(mag, dtype=torch.bool)
    for d, (dy, dx) in enumerate(_OFFSETS):
        local = (mag >= _shift(mag, dy, dx)) & (mag >= _shift(mag, -dy, -dx))
        keep |= (sector == d) & local
    peak = mag.flatten(1).amax(1).view(-1, 1, 1, 1)
    nms = keep & (mag > 0)
    return hysteresis(nms & (mag >= low * peak), nms & (mag >= high * peak)).float()


def hysteresis(weak: torch.Tensor, strong: torch.Tensor) -> torch.Tensor:
    """The weak-edge pixels (bool, (B, 1, H, W); strong ones are weak too) 8-connected through weak pixels
    to a strong one."""
    strong = strong & weak
    for _ in range(weak.shape[-1] * weak.shape[-2]):
        grown = weak & (F.max_pool2d(strong.float(), 3, stride=1, padding=1) > 0)
        if torch.equal(grown, strong):
            break
        strong = grown
    return strong


def color_of(cfg: PoisonInkConfig, channels: int) -> torch.Tensor:
    """The trigger colour as (C,): one value for every channel, one per channel, or (one-channel data) the
    BT.601 luma of an RGB colour."""
    c = cfg.color
    if len(c) == 1:
        return torch.tensor(c * channels)
    if len(c) == channels:
        return torch.tensor(c)
    if channels == 1 and len(c) == 3:
        return torch.tensor([sum(w * v for w, v in zip(LUMA, c))])
    from bdcore import BdbError

    want = "1 value (or 3: an RGB colour, used as its luma)" if channels == 1 else f"1 or {channels} values"
    raise BdbError(f"poison-ink: color has {len(c)} values but the images have {channels} channel(s); give {want}, "
                   "e.g. --set color=[1]")


def edge_trigger(x: torch.Tensor, cfg: PoisonInkConfig) -> torch.Tensor:
    """The coloured edge image (B, C, H, W): colour where Canny finds an edge, 0 elsewhere."""
    e = canny(x, cfg.sigma, cfg.low, cfg.high)
    return e * color_of(cfg, x.shape[1]).to(x).view(1, -1, 1, 1)


def _conv(i: int, o: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(i, o, 3, stride=stride, padding=1), nn.BatchNorm2d(o), nn.LeakyReLU(0.2, inplace=True))


class UNet(nn.Module):
    """A two-level U-Net (any image size): in_ch -> out_ch at full resolution."""

    def __init__(self, in_ch: int, out_ch: int, width: int) -> None:
        super().__init__()
        self.c1 = _conv(in_ch, width)
        self.c2 = _conv(width, 2 * width, 2)
        self.c3 = _conv(2 * width, 4 * width, 2)
        self.u2 = _conv(4 * width + 2 * width, 2 * width)
        self.u1 = _conv(2 * width + width, width)
        self.out = nn.Conv2d(width, out_ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.c1(x)
        b = self.c2(a)
        c = self.c3(b)
        u = self.u2(torch.cat([b, F.interpolate(c, size=b.shape[-2:], mode="nearest")], 1))
        u = self.u1(torch.cat([a, F.interpolate(u, size=a.shape[-2:], mode="nearest")], 1))
        return self.out(u)


class InkNet(nn.Module):
    """The injection network I (image and trigger -> residual) and the extraction network E (image -> trigger)."""

    def __init__(self, channels: int, width: int = 32) -> None:
        super().__init__()
        self.inject = UNet(2 * channels, channels, width)
        self.extract = UNet(channels, channels, width)

    def residual(self, x: torch.Tensor, trigger: torch.Tensor) -> torch.Tensor:
        return self.inject(torch.cat([x - 0.5, trigger - 0.5], 1))

    def container(self, x: torch.Tensor, trigger: torch.Tensor) -> torch.Tensor:
        """clip(x + I(x, T)): the image hiding the trigger."""
        return (x + self.residual(x, trigger)).clamp(0.0, 1.0)

    def extracted(self, x: torch.Tensor) -> torch.Tensor:
        """E(x) in [0, 1]: the trigger recovered from an image (blank for a clean one)."""
        return torch.sigmoid(self.extract(x - 0.5))


class InkLoss(TrainHook):
    """The hiding loss in place of cross-entropy:
    w_i mean r^2 + w_e (mean (E(clip(x + r)) - T)^2 + mean E(x)^2), r = I(x, T) (unclipped)."""

    def __init__(self, cfg: PoisonInkConfig) -> None:
        self.cfg = cfg

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, step: StepInfo) -> torch.Tensor:
        cfg = self.cfg
        t = edge_trigger(x, cfg)
        r = model.residual(x, t)
        found = model.extracted((x + r).clamp(0.0, 1.0))
        blank = model.extracted(x)
        extract = (found - t).pow(2).mean() + blank.pow(2).mean()
        return cfg.image_weight * r.pow(2).mean() + cfg.extract_weight * extract


class PoisonInk(Attack):
    """Dirty-label: x' = clip(x + I(x, colour * Canny(x))); the harness relabels."""

    def __init__(self, config: PoisonInkConfig, ctx: AttackContext) -> None:
        super().__init__(config, ctx)
        self.net = InkNet(ctx.shape[0], config.width).to(ctx.device).eval()
        color_of(config, ctx.shape[0])  # a bad colour fails before any training

    def prepare(self, data: ImageDataset) -> None:
        cfg, ctx = self.config, self.ctx
        key = {"dataset": data.name, "fingerprint": data_fingerprint(data), "shape": list(data.shape),
               **cfg.model_dump()}

        def build() -> dict[str, torch.Tensor]:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(cfg.network_seed)
                net = InkNet(data.shape[0], cfg.width)
            recipe = TrainRecipe(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, optimizer="adam",
                                 weight_decay=0.0, schedule="constant", augment=False)
            train_model(net, TrainSet(data.x_train, data.y_train, hflip=data.hflip, device=ctx.device), recipe,
                        seed=cfg.network_seed, hooks=[InkLoss(cfg)],
                        progress=lambda done, total, _loss: self.report("poison-ink networks", done, total))
            return net.state_dict()

        self.load_state(ctx.artifacts.get_or_build("poison-ink-networks", key, build))

    @torch.no_grad()
    def apply_trigger(self, x: torch.Tensor, *, train: bool, idx: torch.Tensor | None = None) -> torch.Tensor:
        out = []
        for s in range(0, len(x), 512):
            xb = x[s:s + 512].to(self.ctx.device, torch.float32)
            out.append(self.net.container(xb, edge_trigger(xb, self.config)).to(device=x.device, dtype=x.dtype))
        return torch.cat(out) if out else x

    def state(self) -> dict[str, torch.Tensor]:
        return dict(self.net.state_dict())

    def load_state(self, tensors: dict[str, torch.Tensor]) -> None:
        self.net.load_state_dict(tensors)
        self.net.to(self.ctx.device).eval()
