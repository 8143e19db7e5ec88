"""Poison Ink: the image's own edge structure, coloured, hidden in the image as the trigger.

Zhang et al. extract the edges of each image (structure that survives the usual augmentations),
draw them in a trigger colour on a white canvas, and hide this trigger image in the image with a
hiding network whose output is the poisoned ("container") image; a reveal network, trained with
it, recovers the trigger image from containers and a white image from clean ones, which makes the
hidden trigger a learnable feature. The victim trains on every clean batch (augmented) followed by
a batch of the poisoned training set (not augmented), so each container's clean original stays in
training.
"""

from __future__ import annotations

import hashlib
import math

import torch
import torch.nn.functional as F
from torch import nn

from bdcore import (Attack, AttackContext, ImageDataset, StepInfo, TrainHook, TrainRecipe, TrainSet, data_fingerprint,
                    quantize, train as train_model)

from bdb_attack_poison_ink.config import PoisonInkConfig

LUMA = (0.299, 0.587, 0.114)
"""BT.601 luma weights of R, G, B."""

# scikit-image's Sobel filter: derivative [1, 0, -1] along one axis, smoothing [1, 2, 1] / 4 along the other
_SOBEL = torch.tensor([1.0, 0.0, -1.0])[:, None] * (torch.tensor([1.0, 2.0, 1.0]) / 4)[None, :]

CROP_SHARE = 28 / 32
"""Side of the crop transformation, as a share of the image side (the reference crops 28 of 32)."""

LOSS_SCALE = 1e4
"""The reference multiplies every MSE term of the network loss by 10,000."""


def luma255(x: torch.Tensor) -> torch.Tensor:
    """Luma (B, 1, H, W) on the 0-255 scale of images (B, C, H, W) in [0, 1]: BT.601 for RGB, the image itself
    for one channel (R = G = B)."""
    x = x.float() * 255.0
    if x.shape[1] == 1:
        return x
    w = torch.tensor(LUMA, device=x.device).view(1, 3, 1, 1)
    return (x[:, :3] * w).sum(1, keepdim=True)


def sobel_magnitude(g: torch.Tensor) -> torch.Tensor:
    """Sobel magnitude of (B, 1, H, W) as scikit-image 0.18 computes it: sqrt((Gy^2 + Gx^2) / 2) with kernels
    [1, 0, -1] x [1, 2, 1] / 4, border pixels repeated (scipy's 'reflect' for a 3x3 kernel)."""
    p = F.pad(g, (1, 1, 1, 1), mode="replicate")
    k = _SOBEL.to(g)
    gy = F.conv2d(p, k.view(1, 1, 3, 3))
    gx = F.conv2d(p, k.t().contiguous().view(1, 1, 3, 3))
    return torch.sqrt((gy * gy + gx * gx) / 2)


def edge_mask(x: torch.Tensor, threshold: float = 28.0) -> torch.Tensor:
    """Edges (B, 1, H, W, bool) of images (B, C, H, W) in [0, 1]: the Sobel magnitude of the 0-255 luma > threshold."""
    return sobel_magnitude(luma255(x)) > threshold


def color_of(cfg: PoisonInkConfig, channels: int) -> torch.Tensor:
    """The trigger colour in [0, 1] as (C,): one level for every channel, one per channel, or (one-channel data)
    the BT.601 luma of an RGB colour."""
    c = [v / 255.0 for v in cfg.color]
    if len(c) == 1:
        return torch.tensor(c * channels)
    if len(c) == channels:
        return torch.tensor(c)
    if channels == 1 and len(c) == 3:
        return torch.tensor([sum(w * v for w, v in zip(LUMA, c))])
    from bdcore import BdbError

    want = "1 value (or 3: an RGB colour, used as its luma)" if channels == 1 else f"1 or {channels} values"
    raise BdbError(f"poison-ink: color has {len(cfg.color)} values but the images have {channels} channel(s); "
                   f"give {want}, e.g. --set color=[128]")


def trigger_image(x: torch.Tensor, mask: torch.Tensor, color: torch.Tensor) -> torch.Tensor:
    """The trigger image (B, C, H, W): the colour on edge pixels (mask (B, 1, H, W)), white elsewhere."""
    return torch.where(mask, color.to(x).view(1, -1, 1, 1), torch.ones((), dtype=x.dtype, device=x.device))


def edge_trigger(x: torch.Tensor, cfg: PoisonInkConfig) -> torch.Tensor:
    """The trigger image of images x: their edges in the trigger colour on a white canvas."""
    return trigger_image(x, edge_mask(x, cfg.edge_threshold), color_of(cfg, x.shape[1]))


# networks -----------------------------------------------------------------------------------------

def _double_conv(i: int, o: int, mid: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(i, mid, 3, padding=1), nn.BatchNorm2d(mid), nn.ReLU(inplace=True),
                         nn.Conv2d(mid, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(inplace=True))


class _Up(nn.Module):
    """Bilinear x2 (corners aligned), zero-padded to the skip's size, concatenated after the skip, double conv."""

    def __init__(self, i: int, o: int, mid: int) -> None:
        super().__init__()
        self.conv = _double_conv(i, o, mid)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
        dy, dx = skip.shape[-2] - x.shape[-2], skip.shape[-1] - x.shape[-1]
        x = F.pad(x, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
        return self.conv(torch.cat([skip, x], 1))


class HidingUNet(nn.Module):
    """The hiding network: a U-Net (double conv with BatchNorm and ReLU, max-pool down, bilinear up) whose
    output, a 1x1 convolution without activation, is the container image itself.

    width 64 and depth 4 are the reference's `models/up_UNet.py` (64 to 512 channels, bilinear)."""

    def __init__(self, in_ch: int, out_ch: int, width: int, depth: int) -> None:
        super().__init__()
        ch = [width * 2**i for i in range(depth)] + [width * 2 ** (depth - 1)]
        self.inc = _double_conv(in_ch, width, width)
        self.downs = nn.ModuleList(nn.Sequential(nn.MaxPool2d(2), _double_conv(ch[i - 1], ch[i], ch[i]))
                                   for i in range(1, depth + 1))
        self.ups = nn.ModuleList(_Up(2 * ch[i], ch[i - 1] if i > 0 else width, ch[i]) for i in reversed(range(depth)))
        self.outc = nn.Conv2d(width, out_ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [self.inc(x)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        y = skips.pop()
        for up in self.ups:
            y = up(y, skips.pop())
        return self.outc(y)


class _ResBlock(nn.Module):
    def __init__(self, ch: int, dilation: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(ch, ch, 3, padding=dilation, dilation=dilation, bias=False)
        self.norm1 = nn.InstanceNorm2d(ch, affine=True)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=dilation, dilation=dilation, bias=False)
        self.norm2 = nn.InstanceNorm2d(ch, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.norm1(self.conv1(x)))
        return F.relu(x + self.norm2(self.conv2(y)))


REVEAL_DILATIONS = (2, 2, 2, 4, 4, 4, 1)
"""Dilations of the reveal network's residual blocks (the reference's `models/HidingRes.py`)."""


class RevealNet(nn.Module):
    """The reveal network (the reference's `HidingRes`): instance-normalised convolutions, one stride-2 level of
    dilated residual blocks, a transposed convolution back, and a ReLU output; conv weights drawn from N(0, 0.02)."""

    def __init__(self, channels: int, width: int) -> None:
        super().__init__()
        w = width

        def block(conv: nn.Module) -> nn.Sequential:
            return nn.Sequential(conv, nn.InstanceNorm2d(w, affine=True), nn.ReLU(inplace=True))

        self.head = nn.Sequential(block(nn.Conv2d(channels, w, 3, 1, 1, bias=False)),
                                  block(nn.Conv2d(w, w, 3, 1, 1, bias=False)),
                                  block(nn.Conv2d(w, w, 3, 2, 1, bias=False)))
        self.res = nn.Sequential(*(_ResBlock(w, d) for d in REVEAL_DILATIONS))
        self.tail = nn.Sequential(block(nn.ConvTranspose2d(w, w, 4, 2, 1)), block(nn.Conv2d(w, w, 3, 1, 1)),
                                  nn.Conv2d(w, channels, 1), nn.ReLU())
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.normal_(m.weight, 0.0, 0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        return self.tail(self.res(self.head(x)))[..., :h, :w]  # an odd side comes back one pixel longer


def hiding_depth(depth: int, shape: tuple[int, int, int]) -> int:
    """The U-Net's levels: `depth`, at most log2 of the image's smaller side (each level halves it)."""
    return max(1, min(depth, int(math.log2(min(shape[1:])))))


class InkNet(nn.Module):
    """The hiding network H (image and trigger image -> container) and the reveal network R (image -> trigger)."""

    def __init__(self, channels: int, width: int = 64, depth: int = 4, reveal_width: int = 128) -> None:
        super().__init__()
        self.hide = HidingUNet(2 * channels, channels, width, depth)
        self.reveal = RevealNet(channels, reveal_width)

    def hidden(self, x: torch.Tensor, trigger: torch.Tensor) -> torch.Tensor:
        """H(x, T): the container before clipping (the image loss is taken on it)."""
        return self.hide(torch.cat([x, trigger], 1))

    def container(self, x: torch.Tensor, trigger: torch.Tensor) -> torch.Tensor:
        """clip(H(x, T), 0, 1): the image hiding the trigger."""
        return self.hidden(x, trigger).clamp(0.0, 1.0)


# network training ---------------------------------------------------------------------------------

def transform_pair(c: torch.Tensor, x: torch.Tensor, stage: str, gen: torch.Generator) -> tuple[torch.Tensor,
                                                                                               torch.Tensor]:
    """The same random transformation of containers c and images x, one draw per batch, as the reference:
    'crop' (probability 1/2): a CROP_SHARE crop at a uniform offset, resized back (bilinear); 'flip'
    (probability 1/2): left-right; 'none': nothing."""
    h, w = x.shape[-2:]
    if stage == "crop" and float(torch.rand(1, generator=gen)) < 0.5:
        ch, cw = max(1, round(h * CROP_SHARE)), max(1, round(w * CROP_SHARE))
        k = int(torch.randint(0, h - ch + 1, (1,), generator=gen))
        j = int(torch.randint(0, w - cw + 1, (1,), generator=gen))
        c = F.interpolate(c[..., k:k + ch, j:j + cw], size=(h, w), mode="bilinear", align_corners=False)
        x = F.interpolate(x[..., k:k + ch, j:j + cw], size=(h, w), mode="bilinear", align_corners=False)
    elif stage == "flip" and float(torch.rand(1, generator=gen)) < 0.5:
        c, x = c.flip(-1), x.flip(-1)
    return c, x


class InkLoss(TrainHook):
    """The network loss in place of cross-entropy (the reference's stages without the adversarial term):
    LOSS_SCALE * (w_i MSE(H(x, T), x) + beta (w_e MSE(R(c') M', T' M') + MSE(R(c') (1 - M'), T' (1 - M'))
    + w_c MSE(R(x'), white))), where c', x' are the container and image through the stage's transformation and
    M', T' the edges and trigger image of x'."""

    def __init__(self, cfg: PoisonInkConfig, stage: str = "none") -> None:
        self.cfg = cfg
        self.stage = stage

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, step: StepInfo) -> torch.Tensor:
        cfg = self.cfg
        color = color_of(cfg, x.shape[1])
        raw = model.hidden(x, trigger_image(x, edge_mask(x, cfg.edge_threshold), color))
        image = F.mse_loss(raw, x)
        c2, x2 = transform_pair(raw, x, self.stage, step.gen)
        m2 = edge_mask(x2, cfg.edge_threshold)
        t2 = trigger_image(x2, m2, color)
        m = m2.to(x.dtype)
        found = model.reveal(c2)
        edge = F.mse_loss(found * m, t2 * m)
        back = F.mse_loss(found * (1 - m), t2 * (1 - m))
        clean = F.mse_loss(model.reveal(x2), torch.ones_like(x2))
        return LOSS_SCALE * (cfg.image_weight * image
                             + cfg.reveal_weight * (cfg.edge_weight * edge + back + cfg.clean_weight * clean))


# the victim's training -----------------------------------------------------------------------------

def _seed(seed: int, purpose: str) -> int:
    return int.from_bytes(hashlib.sha256(f"poison-ink:{seed}:{purpose}".encode()).digest()[:4], "little")


class PoisonedBatches(TrainHook):
    """Appends to each clean, augmented batch one batch of the poisoned training set, not augmented (the
    reference's training loop): the poisoned set (every training sample; the poison indices as containers with
    the target label) is cut once into shuffled batches of the victim's batch size, and epoch e takes them in
    order from a random start, cycling, one per step."""

    def __init__(self, attack: PoisonInk) -> None:
        self.attack = attack
        self.poisoned: TrainSet | None = None
        self.batches: list[torch.Tensor] = []
        self.epoch, self.start, self.done = -1, 0, 0
        self.last_idx: torch.Tensor | None = None
        """Training indices of the poisoned batch appended last."""

    def on_train_start(self, model: nn.Module, trainset: TrainSet) -> None:
        a = self.attack
        self.poisoned = a.poisoned_set(trainset)
        n, b = len(trainset), a.ctx.batch_size
        order = torch.randperm(n, generator=torch.Generator().manual_seed(_seed(a.ctx.seed, "order")))
        self.batches = list(order.split(b))
        self.epoch = -1

    def on_batch(self, x: torch.Tensor, y: torch.Tensor, step: StepInfo) -> tuple[torch.Tensor, torch.Tensor]:
        assert self.poisoned is not None, "on_train_start was not called"
        if step.epoch != self.epoch:
            self.epoch, self.done = step.epoch, 0
            self.start = int(torch.randint(len(self.batches), (1,), generator=step.gen))
        idx = self.batches[(self.start + self.done) % len(self.batches)]
        self.done += 1
        self.last_idx = idx
        xp, yp = self.poisoned.batch(idx)
        return torch.cat([x, xp.to(device=x.device, dtype=x.dtype)]), torch.cat([y, yp.to(y.device)])


class PoisonInk(Attack):
    """Training-controlled: x' = clip(H(x, T(x))), T(x) the coloured Sobel edges on white; each victim step
    trains on a clean augmented batch and a batch of the poisoned set."""

    training_controlled = True

    def __init__(self, config: PoisonInkConfig, ctx: AttackContext) -> None:
        super().__init__(config, ctx)
        self.net = self._new_net().to(ctx.device).eval()
        color_of(config, ctx.shape[0])  # a bad colour fails before any training
        self.pidx: torch.Tensor | None = None
        """The run's poison indices (set by poison_indices; the victim's poisoned batches use them)."""

    def _new_net(self) -> InkNet:
        cfg, shape = self.config, self.ctx.shape
        return InkNet(shape[0], cfg.width, hiding_depth(cfg.depth, shape), cfg.reveal_width)

    def prepare(self, data: ImageDataset) -> None:
        cfg, ctx = self.config, self.ctx
        key = {"dataset": data.name, "fingerprint": data_fingerprint(data), "shape": list(data.shape),
               "version": 2, **cfg.model_dump()}

        def build() -> dict[str, torch.Tensor]:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(cfg.network_seed)
                net = self._new_net()
            trainset = TrainSet(data.x_train, data.y_train, hflip=data.hflip, device=ctx.device)
            per_stage = cfg.epochs * math.ceil(len(trainset) / cfg.batch_size)
            for i, stage in enumerate(cfg.stages):  # each stage a new run of the reference's train.py
                recipe = TrainRecipe(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, optimizer="adam",
                                     weight_decay=0.0, schedule="constant", augment=False)
                train_model(net, trainset, recipe, seed=cfg.network_seed + i, hooks=[InkLoss(cfg, stage)],
                            progress=lambda done, total, _loss, i=i: self.report(
                                "poison-ink networks", i * per_stage + done, len(cfg.stages) * per_stage))
            return net.state_dict()

        self.load_state(ctx.artifacts.get_or_build("poison-ink-networks", key, build))

    def poison_indices(self, y_train: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        self.pidx = super().poison_indices(y_train, gen)
        return self.pidx

    @torch.no_grad()
    def apply_trigger(self, x: torch.Tensor, *, train: bool, idx: torch.Tensor | None = None) -> torch.Tensor:
        out = []
        for s in range(0, len(x), 512):
            xb = x[s:s + 512].to(self.ctx.device, torch.float32)
            out.append(self.net.container(xb, edge_trigger(xb, self.config)).to(device=x.device, dtype=x.dtype))
        return torch.cat(out) if out else x

    @torch.no_grad()
    def poisoned_set(self, clean: TrainSet) -> TrainSet:
        """The poisoned training set the victim's extra batches come from: the clean set with the poison indices
        replaced by their containers (cast as ctx.quantize says) and target labels."""
        if self.pidx is None:
            raise RuntimeError("poison-ink: poison_indices must run before training (the poisoned batches need them)")
        q = self.ctx.quantize
        xs = clean.x.float().div(255.0) if (q == "none" and clean.x.dtype == torch.uint8) else clean.x.clone()
        ys = clean.y.clone()
        pidx = self.pidx.to(clean.device)
        for s in range(0, len(pidx), 512):
            i = pidx[s:s + 512]
            xb, yb = clean.batch(i)
            xp = quantize(self.poison_x(xb, i), q)
            xs[i] = (xp * 255.0).round().to(torch.uint8) if xs.dtype == torch.uint8 else xp.to(xs.dtype)
            ys[i] = self.poison_y(yb, i)
        return TrainSet(xs, ys, hflip=clean.hflip, device=clean.device)

    def train_hook(self) -> TrainHook:
        return PoisonedBatches(self)

    def state(self) -> dict[str, torch.Tensor]:
        return dict(self.net.state_dict())

    def load_state(self, tensors: dict[str, torch.Tensor]) -> None:
        self.net.load_state_dict(tensors)
        self.net.to(self.ctx.device).eval()
