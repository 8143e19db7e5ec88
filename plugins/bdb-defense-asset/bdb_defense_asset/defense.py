"""ASSET (Pan, Zeng, Lyu, Lin & Jia, USENIX Security 2023): active separation via offset.

A fresh model of the victim's architecture is trained with two opposing steps per batch: minimise
a loss on the clean base set (the reserve) and maximise the loss on the poisoned training set. The
clean training samples resemble the base set, so the two steps cancel on them; the poisoned ones
do not, so their loss alone grows and separates. As the reference code does, the minimised loss is
the variance of the logits (the label-free loss that also serves self-supervised models), and the
maximisation is strengthened by aiming it: per batch a small discriminator learns to tell the
batch's backdoored-model features from the base batch's, and the cross-entropy is maximised only
on the batch's samples the discriminator singles out (anomaly index of its output above
`outlier`). After `rounds` passes every training sample's cross-entropy under the offset model is
its score (higher = more suspicious); a 2-component Gaussian mixture on the scores flags the
samples of the component with the higher mean.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.mixture import GaussianMixture
from torch import nn

from bdcore import Defense, DefenseInputs, DefenseOutput, anomaly_index, median, penultimate, sample_losses

from bdb_defense_asset.config import ASSETConfig


def discriminator(dim: int, hidden: int) -> nn.Module:
    """The reference's MLP: two ReLU hidden layers and a sigmoid output."""
    return nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                         nn.Linear(hidden, 1), nn.Sigmoid())


def aim(f_pos: torch.Tensor, f_base: torch.Tensor, *, hidden: int, steps: int, lr: float, outlier: float) -> torch.Tensor:
    """Bool per poisoned-batch sample: singled out by a discriminator trained to output 1 on f_pos and 0 on f_base
    (MSE, as the reference), i.e. its output's one-sided MAD anomaly index within the batch exceeds `outlier`."""
    with torch.enable_grad():
        disc = discriminator(f_pos.shape[1], hidden).to(f_pos.device)
        opt = torch.optim.Adam(disc.parameters(), lr=lr)
        for _ in range(steps):
            loss = F.mse_loss(disc(f_pos).view(-1), torch.ones(len(f_pos), device=f_pos.device)) + \
                F.mse_loss(disc(f_base).view(-1), torch.zeros(len(f_base), device=f_base.device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    with torch.no_grad():
        out = disc(f_pos).view(-1).double().cpu()
    return ((out > median(out)) & (anomaly_index(out) > outlier)).to(f_pos.device)


def gmm_flags(scores: np.ndarray, seed: int) -> tuple[np.ndarray, float]:
    """Flags of the 2-component Gaussian mixture's higher-mean component, and the lowest flagged score."""
    gm = GaussianMixture(n_components=2, random_state=seed).fit(scores.reshape(-1, 1))
    high = int(np.argmax(gm.means_.ravel()))
    flags = gm.predict(scores.reshape(-1, 1)) == high
    return flags, float(scores[flags].min()) if flags.any() else float("inf")


class ASSET(Defense):
    """Score every training sample by its loss under an actively offset model; flag the high-loss mode."""

    config: ASSETConfig

    def run(self, inputs: DefenseInputs) -> DefenseOutput:
        c = self.config
        train, base = inputs.train, inputs.reserve
        device = train.device
        f_train = penultimate(inputs.model, train.iter_batches(512))
        f_base = penultimate(inputs.model, base.iter_batches(512))
        gen = torch.Generator().manual_seed(self.ctx.seed)
        torch.manual_seed(self.ctx.seed)
        model = inputs.new_model().to(device).train()
        opt_min = torch.optim.Adam(model.parameters(), lr=c.lr)
        opt_max = torch.optim.Adam(model.parameters(), lr=c.lr)
        base_order: list[torch.Tensor] = []
        aimed = 0
        with torch.enable_grad():
            for _ in range(c.rounds):
                for idx in torch.randperm(len(train), generator=gen).split(c.batch_size):
                    if len(base_order) == 0:
                        base_order = list(torch.randperm(len(base), generator=gen).split(c.batch_size))
                    bidx = base_order.pop(0)
                    xb, _ = base.batch(bidx)
                    loss = model(xb).var(1).mean()                      # offset: flatten the base set's outputs
                    opt_min.zero_grad(set_to_none=True)
                    loss.backward()
                    opt_min.step()
                    sel = aim(f_train[idx.to(device)], f_base[bidx.to(device)], hidden=c.disc_hidden,
                              steps=c.disc_steps, lr=c.disc_lr, outlier=c.outlier)
                    if int(sel.sum()) <= 1:
                        continue
                    x, y = train.batch(idx.to(device)[sel])
                    loss = -F.cross_entropy(model(x), y)               # ... and push the aimed samples' loss up
                    opt_max.zero_grad(set_to_none=True)
                    loss.backward()
                    opt_max.step()
                    aimed += int(sel.sum())
        scores = sample_losses(model.eval(), train).double()
        scores = torch.nan_to_num(scores, nan=0.0, posinf=1e30)
        flags, cut = gmm_flags(scores.numpy(), self.ctx.seed % 2**32)
        return DefenseOutput(flagged=torch.from_numpy(flags), scores=scores.float(), info={
            "flag_count": int(flags.sum()), "gmm_cut": round(cut, 6), "aimed_samples": aimed,
            "loss_median": round(float(scores.median()), 6), "base_samples": len(base),
        })
