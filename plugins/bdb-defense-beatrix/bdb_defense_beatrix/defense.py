"""Beatrix (Ma et al., NDSS 2023): Gram matrices of feature maps expose triggered samples.

A trigger changes how the channels of a deep feature map co-activate. For a feature map F (C, HW)
the Gram matrix of order p is G_p = (F^p)(F^p)' / HW, taken back to the first power elementwise
(sign(G) |G|^(1/p)); its upper triangle, for p = 1..orders, is the sample's feature-correlation
vector. Per class, the clean reserve gives each entry's median and MAD; a sample's deviation is the
mean over entries of |g - median| / (1.4826 MAD). Training samples are compared with the clean
statistics of their (possibly poisoned) label; the deviation is the suspicion score, and a sample
is flagged when its deviation is an outlier against the deviations of the clean validation split
(MAD anomaly index above `threshold`, one-sided).
"""

from __future__ import annotations

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


def gram_features(fmap: torch.Tensor, orders: int) -> torch.Tensor:
    """Upper-triangle entries of the order-1..orders Gram matrices of fmap (B, C, H, W) -> (B, orders * C(C+1)/2)."""
    f = fmap.flatten(2).double()  # (B, C, HW)
    c = f.shape[1]
    iu = torch.triu_indices(c, c)
    out = []
    for p in range(1, orders + 1):
        fp = f.sign() * f.abs() ** p
        g = fp @ fp.transpose(1, 2) / f.shape[2]
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


class Beatrix(Defense):
    """Score training samples by Gram-matrix deviation from their class's clean statistics."""

    config: BeatrixConfig

    def _grams(self, model: nn.Module, module: nn.Module, data) -> torch.Tensor:
        return torch.cat([g for _, g in self._chunks(model, module, data)])

    def run(self, inputs: DefenseInputs) -> DefenseOutput:
        c = self.config
        model = inputs.model.eval()
        name = c.layer or deepest_spatial_module(model, inputs.reserve.batch(torch.arange(2))[0])
        module = get_module(model, name)
        # statistics from the reserve minus the validation split, so the validation deviations that set the
        # threshold are measured against statistics they took no part in
        fit = inputs.reserve_fit if inputs.reserve_fit is not None else inputs.reserve
        g_res, g_val = self._grams(model, module, fit), self._grams(model, module, inputs.val)
        y_res, y_val = fit.y.cpu(), inputs.val.y.cpu()
        stats = {}
        for k in range(self.ctx.num_classes):
            sel = y_res == k
            if int(sel.sum()) >= 2:
                stats[k] = robust_stats(g_res[sel])

        def score(g: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            s = torch.zeros(len(y), dtype=torch.float64)
            for k, (med, mad) in stats.items():
                sel = y == k
                if sel.any():
                    s[sel] = deviation(g[sel], med, mad)
            return s

        s_val = score(g_val, y_val)
        y_train = inputs.train.y.cpu()
        s_train = torch.cat([score(g, y_train[i:i + len(g)]) for i, g in self._chunks(model, module, inputs.train)])
        centre = median(s_val)
        spread = MAD_SCALE * median((s_val - centre).abs())
        index = (s_train - centre) / max(float(spread), 1e-12)
        flagged = index > c.threshold
        return DefenseOutput(flagged=flagged, scores=s_train.float(), info={
            "layer": name, "features": int(g_res.shape[1]), "flag_count": int(flagged.sum()),
            "val_deviation_median": round(float(centre), 6), "val_deviation_mad": round(float(spread), 6),
            "classes_with_stats": len(stats),
        })

    def _chunks(self, model: nn.Module, module: nn.Module, data):
        """(start index, Gram features) per batch of `data`, so the training set's features never all sit in memory."""
        i = 0
        with torch.no_grad(), FeatureTap(module) as tap:
            for x, _ in data.iter_batches(self.config.batch_size):
                model(x)
                g = gram_features(tap.value, self.config.orders).cpu()
                yield i, g
                i += len(g)
