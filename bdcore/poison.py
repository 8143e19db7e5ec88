"""Training data with the poison applied on the fly, batch by batch, on tensors."""

from __future__ import annotations

import torch

from bdcore.attack import Attack


class TrainSet:
    """uint8 images + labels held on the training device; `batch(idx)` gives float [0, 1] images.

    With an attack and poison indices, poisoned samples come out poisoned (images and labels).
    The poison indices are private: defenses get this object but never the indices.
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        hflip: bool = True,
        attack: Attack | None = None,
        poison_idx: torch.Tensor | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        self.device = torch.device(device)
        self.x = x.to(self.device)
        self.hflip = hflip
        self._attack = attack
        n = len(y)
        self._mask = torch.zeros(n, dtype=torch.bool, device=self.device)
        y = y.to(self.device)
        if attack is not None and poison_idx is not None and len(poison_idx):
            pidx = poison_idx.to(self.device)
            self._mask[pidx] = True
            y = y.clone()
            y[pidx] = attack.poison_y(y[pidx], pidx)
        self.y = y
        self._orig = torch.arange(n, device=self.device)

    def __len__(self) -> int:
        return len(self.y)

    @property
    def num_poisoned(self) -> int:
        return int(self._mask.sum())

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Float images in [0, 1] and (possibly poisoned) labels of the samples idx."""
        idx = idx.to(self.device)
        x = self.x[idx].float().div_(255.0)
        if self._attack is not None:
            m = self._mask[idx]
            if bool(m.any()):
                x[m] = self._attack.poison_x(x[m], self._orig[idx[m]]).clamp(0.0, 1.0).to(x.dtype)
        return x, self.y[idx]

    def subset(self, keep: torch.Tensor) -> "TrainSet":
        """The samples where keep is True (poison travels with them)."""
        keep = keep.to(self.device)
        out = TrainSet.__new__(TrainSet)
        out.device, out.hflip, out._attack = self.device, self.hflip, self._attack
        out.x, out.y, out._mask = self.x[keep], self.y[keep], self._mask[keep]
        out._orig = self._orig[keep]  # per-sample triggers still see the original indices
        return out

    def iter_batches(self, batch_size: int):
        """All samples in order, as (float images, labels) batches."""
        for s in range(0, len(self), batch_size):
            yield self.batch(torch.arange(s, min(s + batch_size, len(self)), device=self.device))
