"""SentiNet (Chou, Tramer & Pellegrino, IEEE SPW 2020): localized triggers are salient and universal.

Per input x with predicted class y: Grad-CAM of y at the last spatial feature map marks the salient
region R (CAM scaled to [0, 1], at least `mask_threshold`). R is cut out of x and pasted on
`n_clean` clean reserve images: the **fooled rate** is the share of them (among those not already
predicted y) that the model then classifies as y. The same region filled with uniform noise (an
inert pattern) gives the **average confidence** of the model on the patched clean images. A
trigger region fools almost every image while an inert patch of its size leaves the model
confident; a clean object's region rarely fools. The decision boundary comes from clean data
only: the reserve's points (confidence, fooled) are cut into `bins` confidence intervals, the
highest fooled rate of each interval is fitted by a quadratic, and an input's score is its fooled
rate minus the boundary at its confidence. The threshold on the score rejects a share `frr` of
the reserve.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bdcore import Defense, DefenseInputs, DefenseOutput, FeatureTap, get_module, last_feature_map, threshold_at_frr

from bdb_defense_sentinet.config import SentiNetConfig


def grad_cam(model: nn.Module, layer: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Grad-CAM of each image's predicted class at `layer`'s output, upsampled to the image and scaled to
    [0, 1] per image: (cams (B, H, W), predictions (B,)). Works under torch.no_grad too."""
    with torch.enable_grad(), FeatureTap(layer, detach=False) as tap:
        logits = model(x)
        pred = logits.argmax(1)
        fmap = tap.value
        grads = torch.autograd.grad(logits.gather(1, pred[:, None]).sum(), fmap)[0]
    cam = F.relu((grads.mean((2, 3), keepdim=True) * fmap).sum(1, keepdim=True)).detach()
    cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    lo = cam.flatten(1).amin(1).view(-1, 1, 1)
    hi = cam.flatten(1).amax(1).view(-1, 1, 1)
    return (cam - lo) / (hi - lo).clamp_min(1e-12), pred.detach()


@torch.no_grad()
def transplant(model: nn.Module, x: torch.Tensor, masks: torch.Tensor, pred: torch.Tensor, carriers: torch.Tensor,
               carrier_pred: torch.Tensor, gen: torch.Generator, chunk: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """(fooled rate, average confidence) of each input x (B, C, H, W) with region masks (B, 1, H, W).

    Fooled: share of the carriers not already predicted pred[i] that are classified pred[i] once the
    region of x[i] is pasted on them. Average confidence: mean top softmax probability on the carriers
    with the region filled by uniform noise.
    """
    b, n = len(x), len(carriers)
    m = masks[:, None]                                         # (B, 1, 1, H, W)
    keep = carriers[None] * (1 - m)                            # (B, N, C, H, W)
    pasted = (keep + (x * masks)[:, None]).flatten(0, 1)
    hits = _logits(model, pasted, chunk).argmax(1).view(b, n) == pred[:, None]
    eligible = carrier_pred[None] != pred[:, None]
    fooled = (hits & eligible).sum(1).double() / eligible.sum(1).clamp_min(1).double()
    noise = torch.rand(keep.shape, generator=gen).to(x.device)
    conf = _logits(model, (keep + noise * m).flatten(0, 1), chunk).softmax(1).amax(1).view(b, n).mean(1).double()
    return fooled, conf


def _logits(model: nn.Module, x: torch.Tensor, chunk: int) -> torch.Tensor:
    """model(x) in chunks (small chunks keep the activations in cache: faster on CPU)."""
    return torch.cat([model(x[s:s + chunk]) for s in range(0, len(x), chunk)])


def fit_boundary(conf: np.ndarray, fooled: np.ndarray, bins: int) -> tuple[np.ndarray, float, float]:
    """The clean decision boundary: quadratic (fewer points: lower degree) through the highest fooled rate of
    each of `bins` equal confidence intervals. Returns (polynomial coefficients, confidence range lo, hi)."""
    lo, hi = float(conf.min()), float(conf.max())
    edges = np.linspace(lo, hi, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)
    px, py = [], []
    for k in range(bins):
        sel = which == k
        if sel.any():
            j = np.flatnonzero(sel)[np.argmax(fooled[sel])]
            px.append(conf[j])
            py.append(fooled[j])
    deg = min(2, len(px) - 1)
    return np.polyfit(px, py, deg) if deg > 0 else np.array([max(py)]), lo, hi


def boundary_distance(conf: torch.Tensor, fooled: torch.Tensor, coef: np.ndarray, lo: float, hi: float) -> torch.Tensor:
    """Fooled rate minus the boundary at the confidence (clipped to the clean range): > 0 above the boundary."""
    c = conf.double().clamp(lo, hi).cpu().numpy()
    return fooled.double().cpu() - torch.from_numpy(np.polyval(coef, c))


class SentiNet(Defense):
    """Input detector: a salient region that fools clean images while its inert version does not."""

    config: SentiNetConfig

    def run(self, inputs: DefenseInputs) -> DefenseOutput:
        c = self.config
        model = inputs.model.eval().to(memory_format=torch.channels_last)  # same numbers, faster convolutions
        reserve = torch.cat([x for x, _ in inputs.reserve.iter_batches(1024)])
        gen = torch.Generator().manual_seed(self.ctx.seed)
        carriers = reserve[torch.randperm(len(reserve), generator=gen)[:c.n_clean].to(reserve.device)]
        layer = get_module(model, c.layer) if c.layer else last_feature_map(model, reserve[:2])[1]
        with torch.no_grad():
            carrier_pred = model(carriers).argmax(1)

        def points(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            out = []
            for s in range(0, len(x), c.batch_size):
                xb = x[s:s + c.batch_size]
                cam, pred = grad_cam(model, layer, xb)
                masks = (cam >= c.mask_threshold).to(xb.dtype)[:, None]
                out.append(transplant(model, xb, masks, pred, carriers, carrier_pred, gen))
            return torch.cat([f for f, _ in out]).cpu(), torch.cat([a for _, a in out]).cpu()

        fooled, conf = points(reserve)
        coef, lo, hi = fit_boundary(conf.numpy(), fooled.numpy(), c.bins)
        calib = boundary_distance(conf, fooled, coef, lo, hi)
        thr = threshold_at_frr(calib, c.frr)

        def detect(x: torch.Tensor) -> torch.Tensor:
            f, a = points(x.to(reserve.device))
            return boundary_distance(a, f, coef, lo, hi).float()

        detector: Callable[[torch.Tensor], torch.Tensor] = detect
        return DefenseOutput(input_detector=detector, threshold=thr, info={
            "threshold": round(thr, 6), "boundary": [round(float(v), 6) for v in coef],
            "confidence_range": [round(lo, 6), round(hi, 6)], "calibration_images": len(reserve),
            "carriers": len(carriers), "reserve_fooled_mean": round(float(fooled.mean()), 6),
            "reserve_confidence_mean": round(float(conf.mean()), 6),
            "calibration_rejected": round(float((calib > thr).double().mean()), 6),
        })
