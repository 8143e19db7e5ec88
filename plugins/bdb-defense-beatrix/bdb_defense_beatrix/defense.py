"""Beatrix (Ma et al., NDSS 2023): Gram matrices of feature maps expose triggered samples.

A trigger changes how the channels of a deep feature map co-activate. For a feature map F (C, HW)
the Gram matrix of order p is G_p = (F^p)(F^p)' / HW, taken back to the first power elementwise
(sign(G) |G|^(1/p)); its upper triangle, for p = 1..orders, is the sample's feature-correlation
vector. Per class (the model's predicted class by default), the clean reserve gives each entry's
median and MAD.

Rule 'reference' (the default, BackdoorBench's detection script): a sample's deviation is the excess
of its entries beyond median +- band x MAD, relative to that bound, averaged; a class's threshold is
the 95th percentile of its clean images' deviations, each measured 5-fold against the statistics of
the other folds; a sample above its class's threshold is flagged. The class-level test (a KMMD
between the flagged and unflagged samples of each class, MAD anomaly index above e^2) names
suspected target classes in `info`.

Rule 'anomaly' (this plugin until issue 27): the deviation is the mean of |g - median| / (1.4826 MAD),
and a sample is flagged when it is an outlier (MAD anomaly index above e^2) against the deviations of
the clean validation split, pooled over classes.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from bdcore import Defense, DefenseInputs, DefenseOutput, FeatureTap, get_module, median

from bdb_defense_beatrix.config import BeatrixConfig

MAD_SCALE = 1.4826


@torch.no_grad()
def deepest_spatial_module(model: nn.Module, x: torch.Tensor) -> str:
    """Name of the last module (in execution order) whose output is a (B, C, H, W) map with H * W > 1."""
    order: list[str] = []
    handles = [m.register_forward_hook(lambda mod, i, o, n=n: order.append(n) if torch.is_tensor(o) and o.dim() == 4
                                       and o.shape[2] * o.shape[3] > 1 else None)
               for n, m in model.named_modules() if n and not list(m.children())]
    try:
        model.eval()(x)
    finally:
        for h in handles:
            h.remove()
    if not order:
        raise ValueError(f"{type(model).__name__} has no spatial feature map; set `layer`")
    return order[-1]


def gram_features(fmap: torch.Tensor, orders: int, power: bool = True) -> torch.Tensor:
    """Upper-triangle entries of the order-1..orders Gram matrices of fmap (B, C, H, W) -> (B, orders * C(C+1)/2).

    power: the paper's (F^p)(F^p)' / HW; without it, F F' (BackdoorBench's), both then taken to the 1/p power.
    """
    f = fmap.flatten(2).double()  # (B, C, HW)
    c = f.shape[1]
    iu = torch.triu_indices(c, c)
    plain = None if power else f @ f.transpose(1, 2)
    out = []
    for p in range(1, orders + 1):
        if power:
            fp = f.sign() * f.abs() ** p
            g = fp @ fp.transpose(1, 2) / f.shape[2]
        else:
            g = plain
        g = g.sign() * g.abs() ** (1.0 / p)
        out.append(g[:, iu[0], iu[1]])
    return torch.cat(out, 1)


def robust_stats(g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-column median and scaled MAD (1.4826 * MAD) of g (n, k); medians average the middle pair."""
    med = torch.quantile(g, 0.5, dim=0)
    mad = MAD_SCALE * torch.quantile((g - med).abs(), 0.5, dim=0)
    return med, mad


def deviation(g: torch.Tensor, med: torch.Tensor, mad: torch.Tensor) -> torch.Tensor:
    """Mean over entries of |g - median| / MAD (entries with a zero MAD are left out)."""
    ok = mad > 1e-12
    return ((g[:, ok] - med[ok]).abs() / mad[ok]).mean(1)


def band_stats(g: torch.Tensor, band: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-column bounds median -+ band x MAD of g (n, k), median and MAD unscaled, the lower middle value for
    an even count (the reference's torch.median)."""
    med = g.median(dim=0).values
    mad = (g - med).abs().median(dim=0).values
    return med - band * mad, med + band * mad


def band_deviation(g: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """Mean over entries of the excess beyond [lo, hi], relative to the bound passed: relu(lo - g) / |lo| +
    relu(g - hi) / |hi| (each bound offset by 1e-6 against a zero, as in the reference)."""
    below = torch.relu(lo - g) / (lo + 1e-6).abs()
    above = torch.relu(g - hi) / (hi + 1e-6).abs()
    return (below + above).mean(1)


def fold_threshold(g: torch.Tensor, band: float, folds: int, percentile: float) -> float:
    """A class's threshold: the `percentile` of its clean rows' deviations, each row's measured against the bounds
    of the other folds (consecutive blocks of n // folds rows; the remainder always fits), taken as the element
    at int(n_held_out x percentile / 100) of the sorted held-out deviations (the reference's rule)."""
    n = len(g)
    size = max(1, n // folds)
    held = []
    for i in range(min(folds, n)):
        test = torch.zeros(n, dtype=torch.bool)
        test[i * size:(i + 1) * size] = True
        if test.all():
            continue
        lo, hi = band_stats(g[~test], band)
        held.append(band_deviation(g[test], lo, hi))
    d = torch.sort(torch.cat(held)).values
    return float(d[min(len(d) - 1, int(len(d) * percentile / 100))])


def kmmd(x1: torch.Tensor, x2: torch.Tensor) -> float:
    """Kernel MMD between two samples (rows), as the reference's class-level test: two Gaussian kernels at the
    median squared distance / 2 and at the median, scaled by n m / (n + m)."""
    x = torch.cat([x1, x2]).double()
    d2 = torch.cdist(x, x) ** 2
    bw = d2.flatten().median() / 2
    k = torch.exp(-d2 / bw) + torch.exp(-d2 / (2 * bw))
    n, m = len(x1), len(x2)
    diff = k[:n, :n].mean() + k[n:, n:].mean() - 2 * k[:n, n:].mean()
    return float(diff * n * m / (n + m))


def class_anomaly(j: torch.Tensor) -> torch.Tensor:
    """|J - median| / 1.4826 / (MAD + 1e-6) of per-class statistics J (the reference's J*)."""
    med = median(j)
    return (j - med).abs() / MAD_SCALE / (median((j - med).abs()) + 1e-6)


class Beatrix(Defense):
    """Score training samples by Gram-matrix deviation from their class's clean statistics."""

    config: BeatrixConfig

    def run(self, inputs: DefenseInputs) -> DefenseOutput:
        c = self.config
        model = inputs.model.eval()
        name = c.layer or deepest_spatial_module(model, inputs.reserve.batch(torch.arange(2))[0])
        module = get_module(model, name)
        if c.rule == "reference":
            return self._reference(model, module, name, inputs)
        return self._anomaly(model, module, name, inputs)

    def _group(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return logits.argmax(1).cpu() if self.config.group == "prediction" else y.cpu()

    def _reference(self, model: nn.Module, module: nn.Module, name: str, inputs: DefenseInputs) -> DefenseOutput:
        c = self.config
        # the whole reserve: nothing here is selected on the validation split; shuffled, as the reference shuffles
        # its clean images before cutting folds
        g_res, k_res, _ = self._features(model, module, inputs.reserve)
        perm = torch.randperm(len(g_res), generator=torch.Generator().manual_seed(self.ctx.seed))
        g_res, k_res = g_res[perm], k_res[perm]
        bounds, thresholds = {}, {}
        for k in range(self.ctx.num_classes):
            g = g_res[k_res == k]
            if len(g) >= 2:
                thresholds[k] = fold_threshold(g, c.band, c.folds, c.percentile)
                bounds[k] = band_stats(g, c.band)
        n = len(inputs.train)
        dev = torch.zeros(n, dtype=torch.float64)
        thr = torch.full((n,), math.inf, dtype=torch.float64)
        groups = torch.zeros(n, dtype=torch.long)
        pooled = []
        for i, g, kk, pool in self._chunks(model, module, inputs.train):
            for k, (lo, hi) in bounds.items():
                sel = kk == k
                if sel.any():
                    dev[i:i + len(g)][sel] = band_deviation(g[sel], lo, hi)
                    thr[i:i + len(g)][sel] = thresholds[k]
            groups[i:i + len(g)] = kk
            pooled.append(pool)
        flagged = dev > thr
        # the class-level test: KMMD between the flagged and unflagged samples of each class (first 500 of each,
        # channel means of the feature map); a MAD anomaly index above e^2 names a suspected target class
        pooled_t = torch.cat(pooled)
        j = torch.zeros(self.ctx.num_classes, dtype=torch.float64)
        for k in range(self.ctx.num_classes):
            sel = groups == k
            bad, good = pooled_t[sel & flagged][:500], pooled_t[sel & ~flagged][:500]
            if len(bad) and len(good):
                j[k] = kmmd(good, bad)
        j_star = class_anomaly(j)
        scores = dev / thr.clamp_min(1e-12)  # above 1 exactly where flagged; comparable across classes
        scores[torch.isinf(thr)] = 0.0
        return DefenseOutput(flagged=flagged, scores=scores.float(), info={
            "layer": name, "rule": "reference", "features": int(g_res.shape[1]), "flag_count": int(flagged.sum()),
            "class_thresholds": {str(k): round(v, 6) for k, v in thresholds.items()},
            "flagged_per_class": {str(k): int((flagged & (groups == k)).sum()) for k in range(self.ctx.num_classes)},
            "kmmd_anomaly_index": [round(float(v), 4) for v in j_star],
            "target_classes": [k for k in range(self.ctx.num_classes) if float(j_star[k]) > c.threshold],
        })

    def _anomaly(self, model: nn.Module, module: nn.Module, name: str, inputs: DefenseInputs) -> DefenseOutput:
        c = self.config
        # statistics from the reserve minus the validation split, so the validation deviations that set the
        # threshold are measured against statistics they took no part in
        fit = inputs.reserve_fit if inputs.reserve_fit is not None else inputs.reserve
        g_res, k_res, _ = self._features(model, module, fit)
        g_val, k_val, _ = self._features(model, module, inputs.val)
        stats = {}
        for k in range(self.ctx.num_classes):
            sel = k_res == k
            if int(sel.sum()) >= 2:
                stats[k] = robust_stats(g_res[sel])

        def score(g: torch.Tensor, kk: torch.Tensor) -> torch.Tensor:
            s = torch.zeros(len(kk), dtype=torch.float64)
            for k, (med, mad) in stats.items():
                sel = kk == k
                if sel.any():
                    s[sel] = deviation(g[sel], med, mad)
            return s

        s_val = score(g_val, k_val)
        s_train = torch.cat([score(g, kk) for _, g, kk, _ in self._chunks(model, module, inputs.train)])
        centre = median(s_val)
        spread = MAD_SCALE * median((s_val - centre).abs())
        index = (s_train - centre) / max(float(spread), 1e-12)
        flagged = index > c.threshold
        return DefenseOutput(flagged=flagged, scores=s_train.float(), info={
            "layer": name, "rule": "anomaly", "features": int(g_res.shape[1]), "flag_count": int(flagged.sum()),
            "val_deviation_median": round(float(centre), 6), "val_deviation_mad": round(float(spread), 6),
            "classes_with_stats": len(stats),
        })

    def _features(self, model: nn.Module, module: nn.Module, data) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        parts = list(self._chunks(model, module, data))
        return tuple(torch.cat([p[j] for p in parts]) for j in (1, 2, 3))  # type: ignore[return-value]

    def _chunks(self, model: nn.Module, module: nn.Module, data):
        """(start index, Gram features, class group, channel means of the map) per batch of `data`, so the
        training set's Gram features never all sit in memory."""
        i = 0
        with torch.no_grad(), FeatureTap(module) as tap:
            for x, y in data.iter_batches(self.config.batch_size):
                logits = model(x)
                g = gram_features(tap.value, self.config.orders, power=self.config.gram == "paper").cpu()
                yield i, g, self._group(logits, y), tap.value.double().mean((2, 3)).cpu()
                i += len(g)
