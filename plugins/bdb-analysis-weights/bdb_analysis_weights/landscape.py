"""Loss landscape along two filter-normalised random directions (Li et al., NeurIPS 2018):
each direction has, per filter, the norm of that filter's weights; biases and BN parameters
stay fixed. The clean loss and the backdoor loss (triggered images, target labels) side by side."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn

from bdcore import Analysis, AnalysisContext, AnalysisResult


def filter_normalised_direction(model: nn.Module, gen: torch.Generator) -> list[torch.Tensor]:
    """A random direction with each filter (row of a weight) scaled to that filter's norm; zero on
    1-D parameters (biases, batch norm)."""
    out = []
    for p in model.parameters():
        d = torch.randn(p.shape, generator=gen).to(p.device, p.dtype)
        if p.dim() <= 1:
            d.zero_()
        else:
            pn = p.detach().flatten(1).norm(dim=1)
            dn = d.flatten(1).norm(dim=1).clamp_min(1e-12)
            d.mul_((pn / dn).view(-1, *([1] * (p.dim() - 1))))
        out.append(d)
    return out


@torch.no_grad()
def loss_grid(model: nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]], d1: list[torch.Tensor],
              d2: list[torch.Tensor], coords: np.ndarray) -> np.ndarray:
    """Mean cross-entropy of each batch at theta + a d1 + b d2 for a, b in coords; (len(batches), R, R).
    The model's weights are restored afterwards."""
    params = list(model.parameters())
    theta = [p.detach().clone() for p in params]
    model.eval()
    out = np.zeros((len(batches), len(coords), len(coords)))
    try:
        for i, a in enumerate(coords):
            for j, b in enumerate(coords):
                for p, t, u, v in zip(params, theta, d1, d2):
                    p.copy_(t + float(a) * u + float(b) * v)
                for k, (x, y) in enumerate(batches):
                    out[k, j, i] = float(F.cross_entropy(model(x), y))
    finally:
        for p, t in zip(params, theta):
            p.copy_(t)
    return out


class LossLandscape(Analysis):
    """Contours of the clean loss (clean test images) and the backdoor loss (triggered non-target
    test images labelled with the target) on the same two random directions."""

    def run(self, ctx: AnalysisContext) -> AnalysisResult:
        c = self.config
        n = ctx.n or 256
        clean = ctx.sample("clean-test", n=n)
        bd = ctx.sample("bd-test", n=n)
        dev = ctx.device
        batches = [(clean.x, clean.y.to(dev)), (bd.x, bd.label.to(dev))]
        gen = torch.Generator().manual_seed(ctx.seed)
        d1 = filter_normalised_direction(ctx.model, gen)
        d2 = filter_normalised_direction(ctx.model, gen)
        coords = np.linspace(-c.span, c.span, c.resolution)
        grid = loss_grid(ctx.model, batches, d1, d2, coords)
        fig = Figure(figsize=(12, 4.6), layout="constrained")
        numbers: dict = {"resolution": c.resolution, "span": c.span, "n": n}
        mid = len(coords) // 2
        for k, name in enumerate(("clean", "backdoor")):
            ax = fig.add_subplot(1, 2, k + 1)
            z = np.log10(grid[k] + 1e-6)
            cs = ax.contourf(coords, coords, z, levels=20, cmap="viridis")
            ax.contour(coords, coords, z, levels=10, colors="white", linewidths=0.4)
            fig.colorbar(cs, ax=ax, label="log10 loss")
            ax.plot(0, 0, "r*", ms=10)
            ax.set_title(f"{name} loss (centre {grid[k, mid, mid]:.3f})", fontsize=9)
            ax.set_xlabel("direction 1")
            ax.set_ylabel("direction 2")
            numbers[name] = {"centre": float(grid[k, mid, mid]), "min": float(grid[k].min()),
                             "max": float(grid[k].max()), "mean_rise": float(grid[k].mean() - grid[k, mid, mid])}
        fig.suptitle(f"loss landscape (filter-normalised directions)\n{ctx.label_of()}", fontsize=10)
        numbers["grid"] = {"clean": grid[0].round(5).tolist(), "backdoor": grid[1].round(5).tolist()}
        return AnalysisResult(figure=fig, numbers=numbers)
