"""SCAn (Tang et al., USENIX Security 2021): statistical contamination analysis.

A representation is modelled as r = mu_c + e: a class identity mu_c ~ N(0, S_mu) plus a variation
e ~ N(0, S_e) shared by every class. S_mu and S_e are estimated by EM on clean data (the clean
reserve; the "global model"). In a class whose samples are partly poisoned, the
representations are better explained by two identities than by one: per class SCAn splits the
samples into two groups under S_e (EM), and the log-likelihood ratio of the two-identity model
over the one-identity model is the class statistic J. Classes whose J is an outlier above the
median (MAD anomaly index over the classes > threshold) are flagged, and in a flagged class the
group that the class's clean reserve samples do not occupy is flagged poisoned (as in the reference
implementation: the clean samples go through the per-class split with the training samples).

Per-sample suspicion (for AUROC): the class's signed anomaly index plus a squashed log-likelihood
ratio of the sample under the suspect group against the other group (a tie-breaker within the
class in (0, 1)).
"""

from __future__ import annotations

import torch

from bdcore import Defense, DefenseInputs, DefenseOutput, anomaly_index, median, penultimate

from bdb_defense_scan.config import SCAnConfig


def _cov(z: torch.Tensor) -> torch.Tensor:
    return torch.cov(z.T)


def global_model(x: torch.Tensor, y: torch.Tensor, num_classes: int, iters: int = 100,
                 tol: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    """(S_mu, S_e) of clean representations x (n, m) with labels y, by EM (the paper's Sec. 4.2)."""
    x = x.double() - x.double().mean(0)
    classes = torch.unique(y)
    counts = torch.stack([(y == k).sum() for k in classes]).double()
    sums = torch.stack([x[y == k].sum(0) for k in classes])  # (L, m)
    pos = torch.searchsorted(classes, y)
    u = (sums / counts[:, None])[pos]
    s_mu, s_e = _cov(u), _cov(x - u)
    for _ in range(iters):
        f = torch.linalg.pinv(s_e)
        s_mu_f = s_mu @ f
        ident = torch.stack([-(s_e @ (-torch.linalg.pinv(n * s_mu + s_e) @ s_mu_f) @ s) for n, s in zip(counts, sums)])
        u = ident[pos]
        new_mu, new_e = _cov(u), _cov(x - u)
        change = float(torch.linalg.norm(new_mu - s_mu) + torch.linalg.norm(new_e - s_e))
        s_mu, s_e = new_mu, new_e
        if change < tol:
            break
    return s_mu, s_e


def split_class(x: torch.Tensor, f: torch.Tensor, gen: torch.Generator, iters: int = 100) -> torch.Tensor:
    """Two-group split of one class's representations x (n, m) under the variation precision f (EM).

    Returns a bool per sample: True = group 1. Starts from a random assignment, as the reference.
    """
    n = x.shape[0]
    g = torch.rand(n, generator=gen, dtype=torch.float64) >= 0.5
    if n < 2:
        return torch.zeros(n, dtype=torch.bool)
    if g.all() or not g.any():
        g[0] = not bool(g[0])
    for _ in range(iters):
        if g.all() or not g.any():
            break
        u1, u2 = x[g].mean(0), x[~g].mean(0)
        bias = u1 @ f @ u1 - u2 @ f @ u2
        new = (bias - 2 * (x @ f @ (u1 - u2))) < 0
        if torch.equal(new, g) or torch.equal(new, ~g):
            g = new
            break
        g = new
    return g


def class_statistic(x: torch.Tensor, g: torch.Tensor, s_mu: torch.Tensor, s_e: torch.Tensor,
                    f: torch.Tensor) -> float:
    """J of one class: log-likelihood ratio (per sample) of two identities (groups g) over one identity."""
    n = x.shape[0]
    if g.all() or not g.any():
        return 0.0
    u1, u2 = x[g].mean(0), x[~g].mean(0)
    mu = -(s_e @ (-torch.linalg.pinv(n * s_mu + s_e)) @ x.sum(0))
    b1 = mu @ f @ mu - u1 @ f @ u1
    b2 = mu @ f @ mu - u2 @ f @ u2
    n1 = int(g.sum())
    ug = torch.where(g[:, None], u1, u2)
    sc = n1 * b1 + (n - n1) * b2 - 2 * ((x @ f) * (mu - ug)).sum()
    return float(sc / n)


class SCAn(Defense):
    """Flag classes with two representation components, then their component unlike the clean reserve."""

    config: SCAnConfig

    def run(self, inputs: DefenseInputs) -> DefenseOutput:
        c = self.config
        model = inputs.model
        train = penultimate(model, inputs.train.iter_batches(c.batch_size)).double().cpu()
        clean = penultimate(model, inputs.reserve.iter_batches(c.batch_size)).double().cpu()  # val lies inside it
        y_train = inputs.train.y.cpu()
        y_clean = inputs.reserve.y.cpu()
        s_mu, s_e = global_model(clean, y_clean, self.ctx.num_classes, c.em_iters, c.tol)
        f = torch.linalg.pinv(s_e)
        allx = torch.cat([train, clean])
        allx = allx - allx.mean(0)
        ally = torch.cat([y_train, y_clean])
        is_clean = torch.cat([torch.zeros(len(train), dtype=torch.bool), torch.ones(len(clean), dtype=torch.bool)])
        gen = torch.Generator().manual_seed(self.ctx.seed)
        n = len(train)
        classes = [k for k in range(self.ctx.num_classes) if bool((y_train == k).any())]
        stats, suspect, llr = [], {}, torch.zeros(n, dtype=torch.float64)
        for k in classes:
            idx = torch.nonzero(ally == k).flatten()
            x = allx[idx]
            g = split_class(x, f, gen, c.em_iters)
            stats.append(class_statistic(x, g, s_mu, s_e, f))
            cl = is_clean[idx]
            # the suspect group: the one holding fewer of the class's clean samples (ties: the smaller group)
            c1, c0 = int((g & cl).sum()), int((~g & cl).sum())
            bad = g if (c1, int(g.sum())) < (c0, int((~g).sum())) else ~g
            suspect[k] = idx[bad & ~cl]
            if bad.any() and (~bad).any():
                ub, ug = x[bad].mean(0), x[~bad].mean(0)
                tr = ~cl
                xt = x[tr]
                d_good = ((xt - ug) @ f * (xt - ug)).sum(1)
                d_bad = ((xt - ub) @ f * (xt - ub)).sum(1)
                llr[idx[tr]] = 0.5 * (d_good - d_bad) / x.shape[1]
        j = torch.tensor(stats, dtype=torch.float64)
        ai = anomaly_index(j) * torch.sign(j - median(j))
        flagged = torch.zeros(n, dtype=torch.bool)
        class_ai = torch.zeros(self.ctx.num_classes, dtype=torch.float64)
        flagged_classes = []
        for k, a in zip(classes, ai.tolist()):
            class_ai[k] = a
            if a > c.threshold:
                flagged_classes.append(k)
                flagged[suspect[k]] = True
        scores = class_ai[y_train] + torch.sigmoid(llr)
        return DefenseOutput(flagged=flagged, scores=scores.float(), info={
            "J": {str(k): round(v, 4) for k, v in zip(classes, stats)},
            "anomaly_index": {str(k): round(float(a), 4) for k, a in zip(classes, ai.tolist())},
            "flagged_classes": flagged_classes, "flag_count": int(flagged.sum()), "clean_samples": len(clean),
        })
