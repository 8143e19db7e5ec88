"""Image-space explanations: Grad-CAM (our own, with hooks), frequency saliency (gradient of the
loss w.r.t. the input's DCT coefficients) and feature visualisation (gradient ascent on inputs)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn

from bdcore import Analysis, AnalysisContext, AnalysisResult, FeatureTap, as_picture, dct2, idct2


def grad_cam(model: nn.Module, layer: nn.Module, x: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """Grad-CAM (Selvaraju et al., ICCV 2017) maps (N, H, W) in [0, 1] at the image's size: ReLU of
    the layer's channels weighted by the spatial mean of the class score's gradient."""
    model.eval()
    with FeatureTap(layer, detach=False) as tap:
        logits = model(x)
        act = tap.value
    score = logits.gather(1, classes.view(-1, 1)).sum()
    (grad,) = torch.autograd.grad(score, act)
    cam = F.relu((grad.mean(dim=(2, 3), keepdim=True) * act).sum(1, keepdim=True))
    cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    peak = cam.flatten(1).amax(1).clamp_min(1e-12).view(-1, 1, 1)
    return (cam / peak).detach()


def _show(fig: Figure, rows: int, cols: int, pos: int, img: torch.Tensor, heat: np.ndarray | None = None,
          title: str = "") -> None:
    ax = fig.add_subplot(rows, cols, pos)
    pic = as_picture(img)
    ax.imshow(pic, cmap="gray" if pic.ndim == 2 else None, vmin=0, vmax=1)
    if heat is not None:
        ax.imshow(heat, cmap="jet", alpha=0.45, vmin=0, vmax=1)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=7)


class GradCAM(Analysis):
    """Grad-CAM of the predicted class at a layer (default: the last spatial feature map) for
    non-target test images, clean and triggered. Number: the share of each triggered image's CAM
    mass that falls on the pixels the trigger changed, against the share of those pixels."""

    def run(self, ctx: AnalysisContext) -> AnalysisResult:
        s = ctx.sample("bd-test", default_n=200)
        clean = ctx.data.x_test[s.index].float().div(255.0).to(ctx.device)
        layer = ctx.map_layer()
        mod = ctx.module(layer)
        pc, pt = ctx.predict(clean).to(ctx.device), ctx.predict(s.x).to(ctx.device)
        cam_c = torch.cat([grad_cam(ctx.model, mod, clean[i:i + 128], pc[i:i + 128]) for i in range(0, len(s), 128)])
        cam_t = torch.cat([grad_cam(ctx.model, mod, s.x[i:i + 128], pt[i:i + 128]) for i in range(0, len(s), 128)])
        changed = ((s.x - clean).abs().amax(1) > 1.5 / 255).float()
        area = changed.flatten(1).mean(1)
        mass = (cam_t * changed).flatten(1).sum(1) / cam_t.flatten(1).sum(1).clamp_min(1e-12)
        mass_clean = (cam_c * changed).flatten(1).sum(1) / cam_c.flatten(1).sum(1).clamp_min(1e-12)
        k = min(self.config.images, len(s))
        fig = Figure(figsize=(1.6 * k, 3.6))
        for i in range(k):
            _show(fig, 2, k, i + 1, clean[i], cam_c[i].cpu().numpy(), f"clean -> {int(pc[i])}")
            _show(fig, 2, k, k + i + 1, s.x[i], cam_t[i].cpu().numpy(), f"trigger -> {int(pt[i])}")
        fig.suptitle(f"Grad-CAM at {layer}: {float(mass.mean()):.0%} of the triggered CAM on the trigger "
                     f"({float(area.mean()):.0%} of the pixels)\n{ctx.label_of()}", fontsize=9)
        return AnalysisResult(figure=fig, numbers={
            "layer": layer, "n": len(s), "trigger_area": float(area.mean()), "cam_on_trigger": float(mass.mean()),
            "cam_on_trigger_clean": float(mass_clean.mean()),
            "asr_sample": float((pt.cpu() == s.label).float().mean())})


def frequency_saliency(model: nn.Module, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean |d loss / d DCT coefficient| over images and channels, (H, W): which frequencies of the
    input the prediction is sensitive to (DCT-II, orthonormal; (0, 0) the mean)."""
    model.eval()
    coef = dct2(x.detach()).requires_grad_(True)
    loss = F.cross_entropy(model(idct2(coef)), labels, reduction="sum")
    (g,) = torch.autograd.grad(loss, coef)
    return g.abs().mean(dim=(0, 1)).cpu() / len(x)


def high_frequency_share(sal: torch.Tensor) -> float:
    """Share of saliency on coefficients (u, v) with u + v >= (H + W) / 2."""
    h, w = sal.shape
    u, v = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    return float(sal[(u + v) >= (h + w) / 2].sum() / sal.sum().clamp_min(1e-20))


class FrequencySaliency(Analysis):
    """Saliency of the input's DCT coefficients for the predicted class, clean test images vs the
    same images with the trigger (log scale; low frequencies top-left)."""

    def run(self, ctx: AnalysisContext) -> AnalysisResult:
        s = ctx.sample("bd-test", default_n=256)
        clean = ctx.data.x_test[s.index].float().div(255.0).to(ctx.device)
        maps = {}
        for name, x in (("clean", clean), ("triggered", s.x)):
            maps[name] = frequency_saliency(ctx.model, x, ctx.predict(x).to(ctx.device))
        fig = Figure(figsize=(12, 4.4), layout="constrained")
        vmin = min(float(m[m > 0].min()) if (m > 0).any() else 1e-12 for m in maps.values())
        vmax = max(float(m.max()) for m in maps.values())
        from matplotlib.colors import LogNorm

        numbers: dict = {"n": len(s)}
        for i, (name, m) in enumerate(maps.items()):
            ax = fig.add_subplot(1, 3, i + 1)
            im = ax.imshow(m.clamp_min(vmin).numpy(), cmap="inferno", norm=LogNorm(vmin=vmin, vmax=max(vmax, vmin * 10)))
            ax.set_title(f"{name}: high-frequency share {high_frequency_share(m):.2f}", fontsize=9)
            ax.set_xlabel("horizontal frequency")
            ax.set_ylabel("vertical frequency")
            numbers[name] = {"high_frequency_share": high_frequency_share(m), "total": float(m.sum())}
        fig.colorbar(im, ax=ax, fraction=0.046)
        ratio = (maps["triggered"] / maps["clean"].clamp_min(1e-20)).clamp(1e-3, 1e3)
        ax = fig.add_subplot(1, 3, 3)
        im = ax.imshow(torch.log10(ratio).numpy(), cmap="RdBu_r", vmin=-2, vmax=2)
        ax.set_title("log10 triggered / clean", fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.046)
        fig.suptitle(f"frequency saliency (DCT), n={len(s)} non-target test images\n{ctx.label_of()}", fontsize=10)
        numbers["saliency"] = {k: v.numpy().round(8).tolist() for k, v in maps.items()}
        return AnalysisResult(figure=fig, numbers=numbers)


def trigger_sensitive_neurons(ctx: AnalysisContext, layer: str, count: int, n: int = 200) -> list[int]:
    """Channels whose mean activation the trigger raises most, on non-target test images."""
    s = ctx.sample("bd-test", default_n=n)
    clean = ctx.data.x_test[s.index].float().div(255.0).to(ctx.device)
    gain = ctx.features(s.x, layer, reduce="channel").mean(0) - ctx.features(clean, layer, reduce="channel").mean(0)
    return torch.argsort(gain, descending=True)[:count].tolist()


def visualize_neurons(model: nn.Module, layer: nn.Module, neurons: list[int], shape: tuple[int, int, int],
                      steps: int, lr: float, tv: float, gen: torch.Generator, device: torch.device) \
        -> tuple[torch.Tensor, torch.Tensor]:
    """Images in [0, 1] (one per neuron) maximising the neuron's mean activation minus a
    total-variation penalty, by Adam on sigmoid logits; and the final activations."""
    model.eval()
    logits = torch.randn((len(neurons), *shape), generator=gen).to(device).requires_grad_(True)
    opt = torch.optim.Adam([logits], lr=lr)
    idx = torch.tensor(neurons, device=device)
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        for _ in range(steps):
            x = torch.sigmoid(logits)
            with FeatureTap(layer, detach=False) as tap:
                model(x)
                a = tap.value
            a = a.mean(dim=(2, 3)) if a.dim() == 4 else a
            act = a[torch.arange(len(neurons), device=device), idx]
            tvl = (x[..., 1:, :] - x[..., :-1, :]).abs().mean(dim=(1, 2, 3)) + \
                  (x[..., :, 1:] - x[..., :, :-1]).abs().mean(dim=(1, 2, 3))
            loss = (-act + tv * tvl).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        for p in model.parameters():
            p.requires_grad_(True)
    return torch.sigmoid(logits).detach(), act.detach().cpu()


class FeatureVisualization(Analysis):
    """For the neurons the trigger excites most, synthetic inputs that maximise them; with the class
    the model assigns each (a backdoor neuron's image often shows the trigger and reads as the target)."""

    def run(self, ctx: AnalysisContext) -> AnalysisResult:
        c = self.config
        layer = ctx.map_layer()
        neurons = trigger_sensitive_neurons(ctx, layer, c.neurons)
        imgs, act = visualize_neurons(ctx.model, ctx.module(layer), neurons, ctx.data.shape, c.steps, c.lr, c.tv,
                                      torch.Generator().manual_seed(ctx.seed), ctx.device)
        pred = ctx.predict(imgs)
        cols = min(8, len(neurons))
        rows = (len(neurons) + cols - 1) // cols
        fig = Figure(figsize=(1.6 * cols, 1.9 * rows + 0.7))
        for i, nrn in enumerate(neurons):
            _show(fig, rows, cols, i + 1, imgs[i].cpu(), None, f"n{nrn}: {float(act[i]):.2f} -> {int(pred[i])}")
        numbers = {"layer": layer, "neurons": neurons, "activation": act.tolist(), "predicted": pred.tolist()}
        if ctx.target is not None:
            numbers["target_share"] = float((pred == ctx.target).float().mean())
        fig.suptitle(f"feature visualisation at {layer} (most trigger-sensitive neurons)\n{ctx.label_of()}", fontsize=9)
        return AnalysisResult(figure=fig, numbers=numbers)
