"""Hessian eigenvalue density of the cross-entropy on a batch: Lanczos with full
re-orthogonalisation on Hessian-vector products (double backward), as in stochastic Lanczos
quadrature (Ghorbani et al., ICML 2019)."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn

from bdcore import Analysis, AnalysisContext, AnalysisResult

Hvp = Callable[[torch.Tensor], torch.Tensor]


def hvp_of(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[Hvp, int]:
    """v -> H v for the mean cross-entropy of (x, y) w.r.t. every trainable parameter (eval mode);
    and the number of parameters."""
    params = [p for p in model.parameters() if p.requires_grad]
    model.eval()
    loss = F.cross_entropy(model(x), y)
    grads = torch.autograd.grad(loss, params, create_graph=True)
    flat = torch.cat([g.reshape(-1) for g in grads])

    def hvp(v: torch.Tensor) -> torch.Tensor:
        hv = torch.autograd.grad(flat, params, grad_outputs=v, retain_graph=True)
        return torch.cat([h.reshape(-1) for h in hv]).detach()

    return hvp, flat.numel()


def lanczos(hvp: Hvp, dim: int, steps: int, gen: torch.Generator, device: torch.device | str = "cpu") \
        -> tuple[np.ndarray, np.ndarray]:
    """Ritz values of the Hessian and their weights (squared first components: the spectral
    density's quadrature weights), from `steps` Lanczos iterations with full re-orthogonalisation."""
    v = torch.randn(dim, generator=gen, dtype=torch.float64).to(device)
    v /= v.norm()
    basis = [v]
    alphas, betas = [], []
    w = hvp(v.float()).double()
    alpha = float(w @ v)
    w = w - alpha * v
    alphas.append(alpha)
    for _ in range(1, min(steps, dim)):
        beta = float(w.norm())
        if beta < 1e-10:
            break
        v = w / beta
        for b in basis:  # full re-orthogonalisation, twice is enough
            v = v - (v @ b) * b
        for b in basis:
            v = v - (v @ b) * b
        v = v / v.norm()
        w = hvp(v.float()).double() - beta * basis[-1]
        basis.append(v)
        betas.append(beta)
        alpha = float(w @ v)
        w = w - alpha * v
        alphas.append(alpha)
    t = np.diag(alphas) + np.diag(betas, 1) + np.diag(betas, -1)
    evals, evecs = np.linalg.eigh(t)
    return evals, evecs[0] ** 2


def power_iteration(hvp: Hvp, dim: int, iters: int, gen: torch.Generator, device: torch.device | str = "cpu") -> float:
    """The eigenvalue of largest magnitude by power iteration (a check on Lanczos)."""
    v = torch.randn(dim, generator=gen).to(device)
    v /= v.norm()
    lam = 0.0
    for _ in range(iters):
        w = hvp(v)
        lam = float(w @ v)
        v = w / w.norm().clamp_min(1e-20)
    return lam


def density(evals: np.ndarray, weights: np.ndarray, grid: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian-smoothed spectral density on a grid."""
    g = np.exp(-((grid[:, None] - evals[None, :]) ** 2) / (2 * sigma**2)) / (sigma * np.sqrt(2 * np.pi))
    return g @ weights


class Hessian(Analysis):
    """Eigenvalue density of the Hessian of the loss on a batch of the split (default clean-test,
    n 128, true labels; bd-test uses the attack's target labels)."""

    def run(self, ctx: AnalysisContext) -> AnalysisResult:
        c = self.config
        s = ctx.sample(default_split="clean-test", default_n=128)
        hvp, dim = hvp_of(ctx.model, s.x, s.label.to(ctx.device))
        evals, weights = lanczos(hvp, dim, c.iterations, torch.Generator().manual_seed(ctx.seed), ctx.device)
        lo, hi = float(evals.min()), float(evals.max())
        span = max(hi - lo, 1e-6)
        sigma = c.sigma or 0.01 * span
        grid = np.linspace(lo - 0.05 * span, hi + 0.05 * span, 600)
        dens = density(evals, weights, grid, sigma)
        fig = Figure(figsize=(9, 4.5))
        ax = fig.add_subplot(1, 1, 1)
        ax.semilogy(grid, np.maximum(dens, 1e-12), color="C0")
        ax.set_ylim(max(dens.max() * 1e-8, 1e-12), dens.max() * 2)
        for e in evals[-3:]:
            ax.axvline(e, color="red", lw=0.6, ls=":")
        ax.set_xlabel("eigenvalue")
        ax.set_ylabel("density (log)")
        ax.set_title(f"Hessian spectrum on {s.split} (n={len(s)}, {len(evals)} Lanczos steps): "
                     f"top {hi:.3g}, top/bottom ratio {hi / lo if lo else float('inf'):.3g}", fontsize=9)
        fig.suptitle(ctx.label_of(), fontsize=10)
        return AnalysisResult(figure=fig, numbers={
            "n": len(s), "parameters": dim, "top_eigenvalue": hi, "bottom_eigenvalue": lo,
            "ritz_values": evals.tolist(), "weights": weights.tolist(),
            "trace_estimate": float(dim * (weights * evals).sum())})
