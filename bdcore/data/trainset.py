"""Training data as a defense or the trainer sees it, and the poisoning that makes it.

`TrainSet` holds images and labels only: no poison mask, no attack, no target. The harness makes
the poisoned training set once per run with `poison_train_set` (the attack's trigger applied to
the poison indices in batches, on the training device, cast to uint8 levels the way the
reference stores poisoned images) and hands the result to the trainer and to defenses. The truth
about which samples are poisoned stays with the harness.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

import torch

from bdcore.data.images import to_uint8

if TYPE_CHECKING:
    from bdcore.api.attack import Attack


class TrainSet:
    """Images (uint8 levels, or float in [0, 1] for unquantised poison) and labels on one device.

    `batch(idx)` gives float images in [0, 1] and labels; `subset(keep)` a TrainSet of the kept
    samples; `iter_batches(n)` every sample in order.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, *, hflip: bool = True,
                 device: torch.device | str = "cpu") -> None:
        if x.dtype != torch.uint8 and not x.is_floating_point():
            raise TypeError(f"TrainSet images must be uint8 or float, got {x.dtype}")
        if len(x) != len(y):
            raise ValueError(f"TrainSet: {len(x)} images but {len(y)} labels")
        self.device = torch.device(device)
        self.x = x.to(self.device)
        self.y = y.to(self.device)
        self.hflip = hflip

    def __len__(self) -> int:
        return len(self.y)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the images."""
        c, h, w = self.x.shape[1:]
        return int(c), int(h), int(w)

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Float images in [0, 1] and labels of the samples idx."""
        idx = idx.to(self.device)
        x = self.x[idx]
        x = x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()
        return x, self.y[idx]

    def subset(self, keep: torch.Tensor) -> "TrainSet":
        """The samples where keep is True (a bool mask) or at the given indices."""
        keep = keep.to(self.device)
        return TrainSet(self.x[keep], self.y[keep], hflip=self.hflip, device=self.device)

    def iter_batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """All samples in order, as (float images, labels) batches."""
        for s in range(0, len(self), batch_size):
            yield self.batch(torch.arange(s, min(s + batch_size, len(self)), device=self.device))


@torch.no_grad()
def poison_images(x: torch.Tensor, idx: torch.Tensor, attack: Attack, *, quantize: str = "truncate",
                  train: bool = True, batch_size: int = 512) -> torch.Tensor:
    """The attack's trigger on uint8 images x (N, C, H, W) whose split indices are idx, in batches.

    train: the training-time poison (`poison_x`) or the test-time trigger (`test_trigger`).
    Returns uint8 levels (quantize 'truncate' as the reference, or 'round') or, with 'none', float
    images in [0, 1].
    """
    device = attack.ctx.device
    out = []
    for s in range(0, len(x), batch_size):
        xb = x[s:s + batch_size].to(device).float().div_(255.0)
        ib = idx[s:s + batch_size].to(device)
        xp = (attack.poison_x(xb, ib) if train else attack.test_trigger(xb, ib)).clamp(0.0, 1.0)
        out.append((xp if quantize == "none" else to_uint8(xp, quantize)).cpu())
    if not out:
        return x[:0].clone() if quantize != "none" else x[:0].float()
    return torch.cat(out)


def poison_train_set(x: torch.Tensor, y: torch.Tensor, attack: Attack | None, pidx: torch.Tensor, *,
                     quantize: str = "truncate", hflip: bool = True,
                     device: torch.device | str = "cpu") -> TrainSet:
    """The poisoned training set: samples pidx carry the trigger and the attack's labels.

    x: the clean uint8 training images; pidx: the poison indices. With quantize 'none' the images
    are kept as float (the poison unrounded), otherwise as uint8 levels.
    """
    y = y.clone()
    xs = x.clone() if quantize != "none" else x.float().div(255.0)
    if attack is not None and len(pidx):
        pidx = pidx.cpu()
        xs[pidx] = poison_images(x[pidx], pidx, attack, quantize=quantize).to(xs.dtype)
        y[pidx] = attack.poison_y(y[pidx].to(attack.ctx.device), pidx.to(attack.ctx.device)).cpu()
    return TrainSet(xs, y, hflip=hflip, device=device)
