"""Per-channel Lipschitz upper bound (UCLC) of every convolution, as CLP (Zheng et al., ECCV 2022)
defines it: || gamma_k / sigma_k * W_k ||_2 with W_k reshaped to (in_channels, kh * kw) for a
conv followed by batch norm, || W_k ||_2 for a conv without one."""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from bdcore import Analysis, AnalysisContext, AnalysisResult, conv_bn_pairs, convs


@torch.no_grad()
def uclc(conv: nn.Conv2d, bn: nn.BatchNorm2d | None = None) -> torch.Tensor:
    """Upper bound of each output channel's Lipschitz constant, shape (out_channels,)."""
    w = conv.weight.float()
    if bn is not None:
        w = w * (bn.weight / torch.sqrt(bn.running_var + bn.eps)).view(-1, 1, 1, 1).float()
    return torch.linalg.matrix_norm(w.flatten(2), ord=2).cpu()


def layer_bounds(model: nn.Module) -> dict[str, torch.Tensor]:
    """UCLC of every conv layer (scaled by its batch norm where one follows), by conv name."""
    bns = {c: bn for c, _, _, bn in conv_bn_pairs(model)}
    return {name: uclc(conv, bns.get(name)) for name, conv in convs(model)}


class Lipschitz(Analysis):
    """One column per conv layer: each channel's UCLC, outliers (> mean + u std) in red; for a
    defense run the backdoored model's bounds are drawn in grey beside."""

    def run(self, ctx: AnalysisContext) -> AnalysisResult:
        u = self.config.u
        now = layer_bounds(ctx.model)
        before = layer_bounds(ctx.backdoored) if ctx.is_defense and ctx.model is not ctx.backdoored else None
        fig = Figure(figsize=(max(6, 0.9 * len(now) + 2), 4.8))
        ax = fig.add_subplot(1, 1, 1)
        rng = np.random.default_rng(0)
        layers: dict[str, dict] = {}
        for i, (name, b) in enumerate(now.items()):
            v = b.numpy()
            thr = float(v.mean() + u * v.std(ddof=1)) if len(v) > 1 else float("inf")
            out = v > thr
            jit = rng.uniform(-0.15, 0.15, len(v))
            if before is not None:
                ax.scatter(i - 0.25 + jit / 2, before[name].numpy(), s=6, color="lightgrey")
            ax.scatter(i + jit[~out], v[~out], s=8, color="C0")
            ax.scatter(i + jit[out], v[out], s=16, color="red")
            ax.plot([i - 0.3, i + 0.3], [thr, thr], color="red", lw=0.8, ls="--")
            layers[name] = {"max": float(v.max()), "mean": float(v.mean()), "outliers": np.flatnonzero(out).tolist()}
        ax.set_xticks(range(len(now)), list(now), rotation=45, ha="right", fontsize=7)
        ax.set_ylabel("UCLC (per-channel Lipschitz upper bound)")
        ax.set_yscale("log")
        fig.suptitle(f"channel Lipschitz bounds (red: > mean + {u:g} std)\n{ctx.label_of()}", fontsize=10)
        return AnalysisResult(figure=fig, numbers={
            "u": u, "layers": layers, "outliers_total": sum(len(v["outliers"]) for v in layers.values()),
            "max": max(v["max"] for v in layers.values())})
