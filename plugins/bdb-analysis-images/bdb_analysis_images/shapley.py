"""SHAP attributions (the `shap` library's GradientExplainer: expected gradients, Erion et al. 2021,
an approximation of Shapley values for differentiable models) of clean and triggered images, against
a background of clean training images. Needs the optional extra: pip install 'bdcore[analysis]'."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from bdcore import Analysis, AnalysisContext, AnalysisResult, BdbError, as_picture


def _import_shap() -> Any:
    try:
        import shap
    except ImportError:
        raise BdbError("the shap tool needs the shap library: pip install 'bdcore[analysis]'") from None
    return shap


class _Column(nn.Module):
    """The model's logit of one class, as a one-output model."""

    def __init__(self, model: nn.Module, cls: int) -> None:
        super().__init__()
        self.model, self.cls = model, cls

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)[:, self.cls:self.cls + 1]


def _as_maps(values: Any, n: int) -> np.ndarray:
    """shap's attributions of one output for n inputs as an (n, C, H, W) array, whatever the shap
    version returns (a list with one array per output, or one array with the outputs last)."""
    v = values[0] if isinstance(values, list) else np.asarray(values)
    v = np.asarray(v)
    if v.ndim == 5:
        v = v[..., 0]
    if v.shape[0] != n or v.ndim != 4:
        raise BdbError(f"shap returned attributions of shape {v.shape}, expected ({n}, C, H, W)")
    return v


def shap_maps(explainer: Any, x: torch.Tensor, nsamples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Expected-gradients attributions (N, C, H, W) of each image's top-scoring class, and those classes."""
    values, idx = explainer.shap_values(x, nsamples=nsamples, ranked_outputs=1, output_rank_order="max", rseed=seed)
    return _as_maps(values, len(x)), np.asarray(idx.cpu() if torch.is_tensor(idx) else idx).reshape(-1)


def mass_on(attr: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Per image, the share of the absolute attribution (summed over channels) inside the region (N, H, W)."""
    a = np.abs(attr).sum(axis=1)
    return (a * region).reshape(len(a), -1).sum(1) / np.maximum(a.reshape(len(a), -1).sum(1), 1e-20)


def _panel(fig: Figure, rows: int, cols: int, pos: int, img: torch.Tensor, attr: np.ndarray | None,
           title: str) -> None:
    ax = fig.add_subplot(rows, cols, pos)
    pic = as_picture(img)
    gray = pic if pic.ndim == 2 else pic.mean(axis=2)
    if attr is None:
        ax.imshow(pic, cmap="gray" if pic.ndim == 2 else None, vmin=0, vmax=1)
    else:
        m = attr.sum(axis=0)
        lim = float(np.abs(m).max()) or 1.0
        ax.imshow(gray, cmap="gray", vmin=0, vmax=1, alpha=0.35)
        ax.imshow(m, cmap="bwr", vmin=-lim, vmax=lim, alpha=0.8)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=7)


class Shap(Analysis):
    """SHAP maps (expected gradients) of the predicted class and of the target class for non-target
    test images, clean and with the trigger. Numbers: the share of the absolute attribution that falls
    on the pixels the trigger changed, on triggered inputs and on the same pixels of the clean inputs."""

    def run(self, ctx: AnalysisContext) -> AnalysisResult:
        shap = _import_shap()
        c = self.config
        s = ctx.sample("bd-test", default_n=32)
        clean = ctx.data.x_test[s.index].float().div(255.0).to(ctx.device)
        bg = ctx.sample("clean-train", n=c.background).x
        region = ((s.x - clean).abs().amax(1) > 1.5 / 255).float().cpu().numpy()
        model = ctx.model.eval()
        explainer = shap.GradientExplainer(model, bg)
        attr = {}
        pred = {}
        for name, x in (("clean", clean), ("triggered", s.x)):
            attr[name], pred[name] = shap_maps(explainer, x, c.nsamples, ctx.seed)
        numbers: dict = {"n": len(s), "background": len(bg), "nsamples": c.nsamples,
                         "trigger_area": float(region.reshape(len(s), -1).mean(1).mean())}
        numbers["predicted_class"] = {name: float(mass_on(attr[name], region).mean()) for name in attr}
        target = ctx.target
        if target is not None:
            col = shap.GradientExplainer(_Column(model, target).eval(), bg)
            for name, x in (("clean", clean), ("triggered", s.x)):
                attr[f"{name}/target"] = _as_maps(col.shap_values(x, nsamples=c.nsamples, rseed=ctx.seed), len(x))
            numbers["target_class"] = {name: float(mass_on(attr[f"{name}/target"], region).mean())
                                       for name in ("clean", "triggered")}
        numbers["asr_sample"] = float((torch.as_tensor(pred["triggered"]) == s.label).float().mean())
        k = min(c.images, len(s))
        rows = 6 if target is not None else 4
        fig = Figure(figsize=(1.7 * k + 0.4, 1.75 * rows + 0.8))
        for i in range(k):
            col = []
            for name, x in (("clean", clean), ("triggered", s.x)):
                col.append((x[i].cpu(), None, f"{name}, y={int(s.y[i])}"))
                col.append((x[i].cpu(), attr[name][i], f"SHAP of pred {int(pred[name][i])}"))
                if target is not None:
                    col.append((x[i].cpu(), attr[f"{name}/target"][i], f"SHAP of target {target}"))
            for r, (img, a, title) in enumerate(col):
                _panel(fig, rows, k, r * k + i + 1, img, a, title)
        p = numbers["predicted_class"]
        fig.suptitle(f"SHAP (expected gradients, {len(bg)} clean background images): attribution on the trigger "
                     f"{p['triggered']:.0%} triggered vs {p['clean']:.0%} clean ({numbers['trigger_area']:.1%} of "
                     f"the pixels)\nred: towards the class, blue: against; {ctx.label_of()}", fontsize=8)
        return AnalysisResult(figure=fig, numbers=numbers)
