"""EP: entropy-based pruning (Zheng et al., NeurIPS 2022, Sec. 4.1).

A neuron's pre-activation (the input of its BN layer, max-pooled over spatial positions per sample)
over the training set is a mixture when the neuron is a backdoor neuron: benign and poisoned samples
have clearly different moments. After standardising each neuron to zero mean and unit variance, a
Gaussian has the largest differential entropy; a well-separated mixture has a smaller one. EP
estimates h = -sum_b p_b log p_b + log(w) with a histogram of bin width w over the samples and, in
every BN layer, prunes neurons whose entropy is below mean - u * std of the layer (their BN scale is
zeroed). The training set is used without its labels; no clean data and no model selection.
"""

from __future__ import annotations

import math

import torch

from bdcore import Defense, DefenseInputs, DefenseOutput, accuracy_on
from bdcore import batchnorms, bn_inputs, zero_bn_scale

from bdb_defense_ep.config import EPConfig


def histogram_entropy(z: torch.Tensor, bin_width: float) -> torch.Tensor:
    """Differential entropy per row of z (rows: neurons, columns: samples), from a histogram.

    Bins of width `bin_width` start at the minimum of the whole tensor (shared grid for all rows).
    """
    z = z.double()
    lo = z.min()
    bins = ((z - lo) / bin_width).floor().long()
    n_bins = int(bins.max()) + 1
    counts = torch.zeros(z.shape[0], n_bins, dtype=torch.float64, device=z.device)
    counts.scatter_add_(1, bins, torch.ones_like(z))
    p = counts / z.shape[1]
    plogp = torch.where(p > 0, p * p.clamp_min(1e-300).log(), torch.zeros_like(p))
    return -plogp.sum(1) + math.log(bin_width)


def standardise(f: torch.Tensor) -> torch.Tensor:
    """Each row of f (neurons x samples) to zero mean and unit variance, in float64.

    A constant row (a dead neuron: its standard deviation is rounding noise, at most 1e-7 of its
    largest magnitude) becomes all zeros, a point mass whose histogram entropy is log(bin width),
    the least possible. Divided by its noise instead, it would span ~1e5 standard units and the
    shared histogram grid millions of bins (seen: 17.9M bins, 3 CPU minutes, on a 1-epoch model).
    """
    f = f.double()
    sd = f.std(1, keepdim=True)
    sd = sd.masked_fill(sd <= 1e-7 * f.abs().amax(1, keepdim=True), math.inf)  # constant rows: z = 0
    return (f - f.mean(1, keepdim=True)) / sd


def outliers_below(score: torch.Tensor, u: float) -> torch.Tensor:
    """Indices whose score is below mean - u * std (std with Bessel's correction, as torch.std)."""
    return torch.nonzero(score < score.mean() - u * score.std()).flatten()


class EP(Defense):
    """Prune BN neurons with abnormally low pre-activation entropy over the training images."""

    config: EPConfig
    needs_train_set = True  # the paper measures the training set the model learnt from (its labels are not used)

    def run(self, inputs: DefenseInputs) -> DefenseOutput:
        c = self.config
        model = inputs.model
        data = inputs.train if c.data == "train" and inputs.train is not None else inputs.reserve
        layers = batchnorms(model)
        inspected = layers if c.layers == "all" else layers[-1:]
        feats = bn_inputs(model, data.iter_batches(c.batch_size), lambda x: x.flatten(2).amax(2), inspected)
        val_before = accuracy_on(model, inputs.val)
        pruned: dict[str, list[int]] = {}
        cutoff: dict[str, float] = {}
        for name, bn in inspected:
            h = histogram_entropy(standardise(feats[name].T), c.bin_width)  # rows: the layer's C neurons
            idx = outliers_below(h, c.u)
            zero_bn_scale(bn, idx)
            pruned[name] = idx.tolist()
            cutoff[name] = round(float(h.mean() - c.u * h.std()), 4)
        n = sum(len(v) for v in pruned.values())
        return DefenseOutput(model=model, info={
            "data": c.data if data is not inputs.reserve else "reserve", "samples": len(data),
            "entropy_cutoff": cutoff, "pruned": pruned, "pruned_count": n, "neurons": sum(bn.num_features for _, bn in layers),
            "val_acc_before": val_before, "val_acc_after": accuracy_on(model, inputs.val),
        })
