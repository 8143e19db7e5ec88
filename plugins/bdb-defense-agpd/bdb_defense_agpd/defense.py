"""AGPD (Yuan, Wei, Zhang, Liu & Wu, 2023): activation-gradient poisoned-sample detection.

For every convolution layer l and sample (x, y), g_l(x) is the gradient of the logit of y with
respect to the layer's output, averaged over space (one value per channel); its direction on the
unit sphere is the sample's point of the *gradient circular distribution* (GCD). The clean direction
b_k of class k is the mean gradient of `n_clean` correctly classified clean reserve samples.

Stage 1-2 (target class): in class k the sample least similar to b_k (cosine) seeds a poison
direction; the dispersion of the class is || cos(g, b_k) - cos(g, g_seed) ||_2 / sqrt(n_k) over the
other samples. Poisoned and clean samples of a target class split between the two directions, so
its dispersion is large; a clean class's samples all point like b_k. Per layer the dispersions get
a one-sided MAD anomaly index over the classes; the layer with the largest index is used and the
classes above `threshold` (e^2) are the targets.

Stage 3 (poisoned samples): starting from the seed, each round computes for every remaining sample
r = d_p / (d_p + d_c), d the cosine distances to the mean gradient of the samples taken so far and
to b_k, min-max normalises r and takes the samples with r <= tau. The Jensen-Shannon divergence
between successive rounds' histograms of r shows when only clean samples remain: the rounds before
the `window` rounds whose divergences are smallest and steadiest (mean + 5 std) are the poison
(at least the seed).

Score (for AUROC): the class's anomaly index (clipped at 0) plus 1 - round / (rounds + 1), so a
target class ranks above the others and, within a class, the early rounds above the late ones.
"""

from __future__ import annotations

from contextlib import ExitStack

import numpy as np
import torch
import torch.nn.functional as F
from scipy.spatial.distance import jensenshannon
from torch import nn

from bdcore import CONV_TYPES, Defense, DefenseInputs, DefenseOutput, FeatureTap, named_layers

from bdb_defense_agpd.config import AGPDConfig

MAD_SCALE = 1.4826


def activation_gradients(model: nn.Module, layers: list[nn.Module], batches) -> list[torch.Tensor]:
    """Per layer, (N, C) spatial means of d logit_y / d output of every sample of batches of (x, y)."""
    out: list[list[torch.Tensor]] = [[] for _ in layers]
    model.eval()
    for x, y in batches:
        with torch.enable_grad(), ExitStack() as stack:
            taps = [stack.enter_context(FeatureTap(m, detach=False)) for m in layers]
            logits = model(x)
            grads = torch.autograd.grad(logits.gather(1, y[:, None]).sum(), [t.value for t in taps])
        for i, g in enumerate(grads):
            out[i].append((g.flatten(2).mean(2) if g.dim() > 2 else g).detach().double().cpu())
    return [torch.cat(v) for v in out]


def dispersion(g: torch.Tensor, basis: torch.Tensor) -> tuple[float, int]:
    """(dispersion, seed): ||cos(g, basis) - cos(g, g_seed)||_2 / sqrt(n) over the non-seed rows of g (n, C),
    the seed being the row least similar to the clean basis."""
    cos_c = F.cosine_similarity(g, basis[None], dim=1)
    seed = int(torch.argmin(cos_c))
    cos_p = F.cosine_similarity(g, g[seed][None], dim=1)
    rest = torch.arange(len(g)) != seed
    return float(torch.linalg.vector_norm(cos_c[rest] - cos_p[rest]) / len(g) ** 0.5), seed


def one_sided_mad(v: torch.Tensor) -> torch.Tensor:
    """|v - median| / (1.4826 (MAD + 1e-6)) above the median, 0 below (the reference's J*)."""
    med = v.median() if len(v) % 2 else v.quantile(0.5)
    mad = (v - med).abs().quantile(0.5)
    j = (v - med).abs() / MAD_SCALE / (mad + 1e-6)
    return torch.where(v < med, torch.zeros_like(j), j)


def closeness(g: torch.Tensor, poison: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """d_p / (d_p + d_c) per row of g, d the cosine distances to the poison and clean directions (0: poison-like)."""
    d_p = 1 - F.cosine_similarity(g, poison[None], dim=1)
    d_c = 1 - F.cosine_similarity(g, basis[None], dim=1)
    return d_p / (d_p + d_c).clamp_min(1e-12)


def _hist(r: torch.Tensor) -> np.ndarray:
    return np.histogram(r.numpy(), bins=np.linspace(0, 1, 100), density=True)[0]


def filter_rounds(g: torch.Tensor, basis: torch.Tensor, seed: int, tau: float) -> tuple[torch.Tensor, list[float]]:
    """Stage 3: the round at which each row of g joins the poison set (seed: 0), and the JS divergence after
    each round between the histograms of the remaining samples' closeness before and after it."""
    n = len(g)
    rounds = torch.full((n,), -1, dtype=torch.long)
    rounds[seed] = 0
    prev = closeness(g[rounds < 0], g[seed], basis)
    js: list[float] = []
    r = 1
    while bool((rounds < 0).any()):
        rest = torch.nonzero(rounds < 0).flatten()
        rate = closeness(g[rest], g[rounds >= 0].mean(0), basis)
        span = float(rate.max() - rate.min())
        if span == 0:
            take = torch.ones_like(rate, dtype=torch.bool) if float(rate.min()) > tau else rate <= tau
        else:
            take = (rate - rate.min()) / span <= tau
        rounds[rest[take]] = r
        left = rate[~take]
        d = 1.0 if len(prev) == 0 or len(left) == 0 else float(jensenshannon(_hist(prev), _hist(left)))
        js.append(d if np.isfinite(d) else 1.0)
        prev, r = left, r + 1
    return rounds, js


def stop_round(js: list[float], window: int) -> int:
    """The first clean round: the start of the `window` successive divergences with the least mean + 5 std
    (js[s] follows round s + 1; the reference keeps rounds 0 .. s - 1 as poison, at least the seed)."""
    if not js:
        return 1
    w = min(window, len(js))
    scores = [np.mean(js[s:s + w]) + 5 * np.std(js[s:s + w]) for s in range(len(js) - w + 1)]
    return max(1, int(np.argmin(scores)))


class AGPD(Defense):
    """Identify target classes by gradient dispersion, then filter their poison by closeness."""

    config: AGPDConfig

    def run(self, inputs: DefenseInputs) -> DefenseOutput:
        c = self.config
        model = inputs.model.eval()
        names, layers = zip(*named_layers(model, CONV_TYPES))
        k_classes = self.ctx.num_classes
        # clean directions: n_clean correctly classified reserve samples spread over the classes
        res = inputs.reserve
        with torch.no_grad():
            pred = torch.cat([model(x).argmax(1) for x, _ in res.iter_batches(c.batch_size)]).cpu()
        y_res = res.y.cpu()
        gen = torch.Generator().manual_seed(self.ctx.seed)
        per = max(1, c.n_clean // k_classes)
        chosen = []
        for k in range(k_classes):
            ok = torch.nonzero((y_res == k) & (pred == k)).flatten()
            chosen.append(ok[torch.randperm(len(ok), generator=gen)[:per]])
        chosen_idx = torch.cat(chosen).sort().values
        clean = res.subset(chosen_idx.to(res.device))
        g_clean = activation_gradients(model, list(layers), clean.iter_batches(c.batch_size))
        y_clean = clean.y.cpu()
        g_train = activation_gradients(model, list(layers), inputs.train.iter_batches(c.batch_size))
        y = inputs.train.y.cpu()
        classes = [k for k in range(k_classes) if bool((y == k).any()) and bool((y_clean == k).any())]

        best = None  # (max index, layer, J per class, seeds)
        for li in range(len(layers)):
            disp, seeds = [], {}
            for k in classes:
                d, s = dispersion(g_train[li][y == k], g_clean[li][y_clean == k].mean(0))
                disp.append(d)
                seeds[k] = s
            j = one_sided_mad(torch.tensor(disp, dtype=torch.float64))
            if best is None or float(j.max()) > best[0]:
                best = (float(j.max()), li, j, seeds)
        _, li, j, seeds = best
        targets = [k for k, v in zip(classes, j.tolist()) if v > c.threshold]

        n = len(y)
        scores = torch.zeros(n, dtype=torch.float64)
        flagged = torch.zeros(n, dtype=torch.bool)
        per_class = {}
        for k, jk in zip(classes, j.tolist()):
            idx = torch.nonzero(y == k).flatten()
            rounds, js = filter_rounds(g_train[li][idx], g_clean[li][y_clean == k].mean(0), seeds[k], c.tau)
            last = int(rounds.max())
            scores[idx] = jk + 1 - rounds.double() / (last + 1)
            if k in targets:
                stop = stop_round(js, c.window)
                flagged[idx[rounds < stop]] = True
                per_class[str(k)] = {"rounds": last, "stop_round": stop, "flagged": int((rounds < stop).sum())}
        return DefenseOutput(flagged=flagged, scores=scores.float(), info={
            "layer": names[li], "anomaly_index": {str(k): round(v, 4) for k, v in zip(classes, j.tolist())},
            "target_classes": targets, "targets": per_class, "flag_count": int(flagged.sum()),
            "clean_samples": len(chosen_idx),
        })
