"""Image quality of the poison: PSNR and SSIM (the core's stealth functions) between poisoned
images and their clean originals, for the training poison and the test trigger. FID needs an
Inception network's weights, which bdb never downloads: it is reported as skipped."""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.figure import Figure

from bdcore import Analysis, AnalysisContext, AnalysisResult, as_picture, psnr, ssim


def _stats(clean: torch.Tensor, poisoned: torch.Tensor) -> tuple[dict, np.ndarray]:
    p = psnr(clean, poisoned).cpu().numpy()
    s = ssim(clean, poisoned).cpu().numpy()
    fin = p[np.isfinite(p)]
    return {"psnr": float(fin.mean()) if len(fin) else None, "psnr_min": float(fin.min()) if len(fin) else None,
            "ssim": float(s.mean()), "unchanged": int((~np.isfinite(p)).sum()), "n": len(p)}, fin


class Quality(Analysis):
    """PSNR/SSIM of bd-train (poisoned training samples vs their originals) and of bd-test, a PSNR
    histogram, and three examples with the amplified difference."""

    def run(self, ctx: AnalysisContext) -> AnalysisResult:
        n = ctx.n or 512
        numbers: dict = {}
        hists = {}
        pairs = {}
        for split, src in (("bd-train", ctx.data.x_train), ("bd-test", ctx.data.x_test)):
            s = ctx.sample(split, n=n)
            clean = src[s.index].float().div(255.0).to(ctx.device)
            numbers[split], hists[split] = _stats(clean, s.x)
            pairs[split] = (clean[:3].cpu(), s.x[:3].cpu())
        numbers["fid"] = None
        numbers["fid_note"] = "skipped: FID needs an Inception network's weights, which are not available locally"
        fig = Figure(figsize=(11, 5.2))
        ax = fig.add_subplot(1, 2, 1)
        for split, fin in hists.items():
            if len(fin):
                ax.hist(fin, bins=30, alpha=0.6, label=f"{split}: PSNR {numbers[split]['psnr']:.2f} dB, "
                                                         f"SSIM {numbers[split]['ssim']:.4f}")
        ax.set_xlabel("PSNR (dB) per image")
        ax.set_ylabel("images")
        ax.legend(fontsize=8)
        clean, pois = pairs["bd-train"]
        for i in range(len(clean)):
            diff = (pois[i] - clean[i]).abs()
            diff = diff / diff.max().clamp_min(1e-8)
            for j, (img, title) in enumerate(((clean[i], "clean"), (pois[i], "poisoned"), (diff, "|diff|, scaled"))):
                sub = fig.add_subplot(len(clean), 6, i * 6 + 4 + j)
                pic = as_picture(img)
                sub.imshow(pic, cmap="gray" if pic.ndim == 2 else None, vmin=0, vmax=1)
                sub.set_xticks([])
                sub.set_yticks([])
                if i == 0:
                    sub.set_title(title, fontsize=8)
        fig.suptitle(f"poison quality (FID skipped: no local feature network)\n{ctx.label_of()}", fontsize=10)
        return AnalysisResult(figure=fig, numbers=numbers)
