"""Image quality of the poison: PSNR and SSIM (the core's stealth functions) between poisoned
images and their clean originals, for the training poison and the test trigger; FID where the user
points `fid_weights` at a local Inception-v3 state dict (bdb never downloads it), else skipped."""

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
        inception = None
        if self.config.fid_weights:  # a bad file fails before any other work
            from bdb_analysis_images.fid import load_inception

            inception = load_inception(self.config.fid_weights, ctx.device)
        numbers: dict = {}
        hists = {}
        pairs = {}
        fids = {}
        for split, src in (("bd-train", ctx.data.x_train), ("bd-test", ctx.data.x_test)):
            s = ctx.sample(split, n=n)
            clean = src[s.index].float().div(255.0).to(ctx.device)
            numbers[split], hists[split] = _stats(clean, s.x)
            pairs[split] = (clean[:3].cpu(), s.x[:3].cpu())
            if inception is not None:
                from bdb_analysis_images.fid import fid

                fids[split] = numbers[split]["fid"] = fid(inception, clean, s.x)
        if inception is None:
            numbers["fid"] = None
            numbers["fid_note"] = ("skipped: FID needs an Inception-v3 state dict, which bdb does not download; "
                                   "set fid_weights to a local file")
            fid_title = "FID skipped: no local feature network"
        else:
            numbers["fid"] = fids
            numbers["fid_note"] = (f"torchvision inception_v3 pool features (2048-d) with {self.config.fid_weights}; "
                                   f"poisoned vs their clean originals, {numbers['bd-train']['n']} and "
                                   f"{numbers['bd-test']['n']} images (FID is biased upwards on small sets)")
            fid_title = ", ".join(f"FID {k} {v:.2f}" for k, v in fids.items())
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
        fig.suptitle(f"poison quality ({fid_title})\n{ctx.label_of()}", fontsize=10)
        return AnalysisResult(figure=fig, numbers=numbers)
