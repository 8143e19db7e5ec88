"""TeCo (Liu et al., CVPR 2023): corruption robustness consistency.

A clean image loses its prediction at similar severities whatever the corruption; a triggered image
does not: the trigger survives some corruptions (noise, brightness) and is destroyed by others
(blur, pixelation) at once. Per input and corruption, the flip severity is the first severity
1..5 at which the hard-label prediction differs from the prediction on the uncorrupted input,
and max_severity + 1 (6) when it never flips (the reference's rule). The suspicion score is the
standard deviation (population) of the flip severities across the corruptions; higher = more
suspicious. The threshold rejects a share `frr` of the clean reserve.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

from bdcore import Defense, DefenseInputs, DefenseOutput, threshold_at_frr

from bdb_defense_teco.config import TeCoConfig
from bdb_defense_teco.corruptions import CORRUPTIONS


def flip_severities(preds: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """First severity (1-based) at which preds (B, K, S) differ from original (B,), per corruption: (B, K).

    A prediction that never flips gets S + 1.
    """
    flipped = preds != original[:, None, None]
    first = flipped.int().argmax(2) + 1  # argmax finds the first True
    return torch.where(flipped.any(2), first, torch.full_like(first, preds.shape[2] + 1))


def deviation(severities: torch.Tensor) -> torch.Tensor:
    """Population standard deviation of the flip severities (B, K) across corruptions -> (B,)."""
    return severities.double().std(1, unbiased=False)


@torch.no_grad()
def teco_scores(model: nn.Module, x: torch.Tensor, corruptions: Sequence[str], max_severity: int,
                gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(score (B,), flip severities (B, K)) of the images x (B, C, H, W) in [0, 1]."""
    original = model(x).argmax(1)
    preds = torch.stack([torch.stack([model(CORRUPTIONS[name](x, s, gen)).argmax(1)
                                      for s in range(1, max_severity + 1)], 1) for name in corruptions], 1)
    sev = flip_severities(preds, original)
    return deviation(sev), sev


class TeCo(Defense):
    """Input detector: inconsistent robustness across corruptions = triggered."""

    config: TeCoConfig

    def run(self, inputs: DefenseInputs) -> DefenseOutput:
        c = self.config
        model = inputs.model.eval().to(memory_format=torch.channels_last)  # same numbers, faster convolutions
        gen = torch.Generator().manual_seed(self.ctx.seed)

        def scores(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            out = [teco_scores(model, x[s:s + c.batch_size], c.corruptions, c.max_severity, gen)
                   for s in range(0, len(x), c.batch_size)]
            return torch.cat([a for a, _ in out]).cpu(), torch.cat([b for _, b in out]).cpu()

        reserve = torch.cat([x for x, _ in inputs.reserve.iter_batches(1024)])
        calib, sev = scores(reserve)
        thr = threshold_at_frr(calib, c.frr)

        def detect(x: torch.Tensor) -> torch.Tensor:
            return scores(x.to(reserve.device))[0].float()

        detector: Callable[[torch.Tensor], torch.Tensor] = detect
        never = sev == c.max_severity + 1
        return DefenseOutput(input_detector=detector, threshold=thr, info={
            "threshold": round(thr, 6), "calibration_images": len(reserve),
            "reserve_deviation_mean": round(float(calib.mean()), 6),
            "reserve_never_flipped": {n: round(float(never[:, i].double().mean()), 4)
                                      for i, n in enumerate(c.corruptions)},
            "calibration_rejected": round(float((calib > thr).double().mean()), 6),
        })
