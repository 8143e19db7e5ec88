"""STRIP (Gao et al., ACSAC 2019): strong intentional perturbation of inputs.

A trojaned input is dominated by its trigger: superimposed with random clean images it is still
classified as the target, so the predictions have low entropy; a clean input superimposed with
other images yields varied predictions. Per input: superimpose `n` random clean reserve images
(an alpha blend by default, or the paper code's saturating pixel sum),
take the Shannon entropy (bits) of each blend's softmax, and average. The suspicion score is the
negative mean entropy; the threshold is set on the clean reserve (which holds the validation split)
so that a share `frr` of it would be rejected.

Data mode (`mode = "data"`) scores every sample of the poisoned training set the same way and flags
those above the reserve threshold: a training-data detector the harness scores against the poison
indices (TPR, FPR, precision, AUROC), with no retraining.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from bdcore import Defense, DefenseInputs, DefenseOutput, threshold_at_frr

from bdb_defense_strip.config import STRIPConfig


def entropy_bits(p: torch.Tensor) -> torch.Tensor:
    """Shannon entropy in bits of each row of probabilities p (0 log 0 = 0)."""
    return -(p * p.clamp_min(1e-30).log2()).sum(-1)


@torch.no_grad()
def strip_scores(model: nn.Module, x: torch.Tensor, pool: torch.Tensor, n: int, alpha: float,
                 gen: torch.Generator, chunk: int = 4096, superimpose: str = "blend") -> torch.Tensor:
    """Negative mean prediction entropy of each input x (B, C, H, W) superimposed with n random pool images.

    superimpose 'blend': alpha * x + (1 - alpha) * pool image; 'add': (x + pool image) clipped to [0, 1].
    """
    model.eval()
    idx = torch.randint(len(pool), (x.shape[0], n), generator=gen).to(pool.device)
    if superimpose == "add":
        blends = (x[:, None] + pool[idx]).clamp_(0.0, 1.0).flatten(0, 1)
    else:
        blends = (alpha * x[:, None] + (1 - alpha) * pool[idx]).flatten(0, 1)  # (B * n, C, H, W)
    ent = torch.cat([entropy_bits(model(blends[s:s + chunk]).softmax(1)) for s in range(0, len(blends), chunk)])
    return -ent.view(x.shape[0], n).mean(1)


class STRIP(Defense):
    """Input detector: low entropy under superimposition = trojaned."""

    config: STRIPConfig

    @property
    def needs_train_set(self) -> bool:  # type: ignore[override]
        return self.config.mode == "data"

    def run(self, inputs: DefenseInputs) -> DefenseOutput:
        c = self.config
        model = inputs.model.eval()
        pool = torch.cat([x for x, _ in inputs.reserve.iter_batches(1024)])  # the whole reserve (val is inside it)
        gen = torch.Generator().manual_seed(self.ctx.seed)
        calib = torch.cat([strip_scores(model, pool[s:s + 256], pool, c.n, c.alpha, gen, c.chunk, c.superimpose)
                           for s in range(0, len(pool), 256)])
        thr = threshold_at_frr(calib, c.frr)

        def detect(x: torch.Tensor) -> torch.Tensor:
            return strip_scores(model, x.to(pool.device), pool, c.n, c.alpha, gen, c.chunk, c.superimpose)

        info = {
            "mode": c.mode, "threshold": round(thr, 6), "calibration_images": len(pool), "pool_images": len(pool),
            "clean_entropy_mean": round(float(-calib.mean()), 6),
            "calibration_rejected": round(float((calib > thr).double().mean()), 6),
        }
        if c.mode == "data":
            assert inputs.train is not None  # granted by needs_train_set
            scores = torch.cat([detect(x) for x, _ in inputs.train.iter_batches(256)]).cpu()
            flagged = scores > thr
            info["flagged"] = int(flagged.sum())
            return DefenseOutput(scores=scores, flagged=flagged, info=info)
        detector: Callable[[torch.Tensor], torch.Tensor] = detect
        return DefenseOutput(input_detector=detector, threshold=thr, info=info)
