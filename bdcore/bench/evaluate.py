"""The one evaluator: C-ACC on the clean test set, ASR and RA on the backdoor test set."""

from __future__ import annotations

import torch
from torch import nn

from bdcore.api.attack import Attack
from bdcore.data import ImageDataset
from bdcore.bench.metrics import accuracy
from bdcore.nn.trainer import predict


def backdoor_test_set(data: ImageDataset, attack: Attack, batch_size: int = 512) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Triggered test images (float [0, 1]), their true labels and their attack-target labels.

    All-to-one: every test sample whose true label is not the target; all-to-all: every sample.
    The triggered images are cast to uint8 levels as the reference stores them (attack.ctx.quantize).
    """
    from bdcore.data.trainset import poison_images

    y = data.y_test
    idx = torch.nonzero(attack.target_label(y) != y).flatten()
    q = attack.ctx.quantize
    x_bd = poison_images(data.x_test[idx], idx, attack, quantize=q, train=False, batch_size=batch_size)
    if x_bd.dtype == torch.uint8:
        x_bd = x_bd.float().div_(255.0)
    return x_bd, y[idx], attack.target_label(y[idx])


@torch.no_grad()
def evaluate(model: nn.Module, data: ImageDataset, attack: Attack, device: torch.device | None = None,
             precision: str = "fp32") -> dict[str, float]:
    """C-ACC, ASR and RA of a model against an attack, as defined in CATALOG.md (precision: the arithmetic
    of the forward passes, the run's own: 'bf16' where it trained in bf16)."""
    device = device or attack.ctx.device
    model.to(device)
    clean_pred = predict(model, data.x_test, device=device, precision=precision)
    x_bd, y_true, y_target = backdoor_test_set(data, attack)
    bd_pred = predict(model, x_bd, device=device, precision=precision)
    return {
        "cacc": accuracy(clean_pred.numpy(), data.y_test.numpy()),
        "asr": accuracy(bd_pred.numpy(), y_target.numpy()),
        "ra": accuracy(bd_pred.numpy(), y_true.numpy()),
    }
