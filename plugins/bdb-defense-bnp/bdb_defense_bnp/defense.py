"""BNP: BN-statistics based pruning (Zheng et al., NeurIPS 2022, Sec. 4.2).

A BN layer's running mean and variance summarise each neuron's pre-activation over the (poisoned)
training set. On clean data a backdoor neuron's pre-activation follows a different distribution,
because the poisoned samples that shaped its running statistics are absent. Modelling both as
Gaussians, the per-neuron divergence is

    KL(N(mu_c, s_c^2) || N(mu_r, s_r^2)) = log(s_r / s_c) + (s_c^2 + (mu_c - mu_r)^2) / (2 s_r^2) - 1/2,

with (mu_c, s_c^2) measured on the clean reserve and (mu_r, s_r^2) the running statistics. In every
BN layer, neurons whose KL exceeds mean + u * std (over the layer's neurons) are pruned by zeroing
their BN scale. No labels and no model selection are needed.
"""

from __future__ import annotations

import torch

from bdcore import Defense, DefenseInputs, DefenseOutput, accuracy_on
from bdcore import batchnorms, bn_inputs, zero_bn_scale

from bdb_defense_bnp.config import BNPConfig


def gaussian_kl(mu_1: torch.Tensor, var_1: torch.Tensor, mu_2: torch.Tensor, var_2: torch.Tensor) -> torch.Tensor:
    """KL(N(mu_1, var_1) || N(mu_2, var_2)), elementwise."""
    return 0.5 * torch.log(var_2 / var_1) + (var_1 + (mu_1 - mu_2) ** 2) / (2 * var_2) - 0.5


def outliers_above(score: torch.Tensor, u: float) -> torch.Tensor:
    """Indices whose score exceeds mean + u * std (std with Bessel's correction, as torch.std)."""
    return torch.nonzero(score > score.mean() + u * score.std()).flatten()


class BNP(Defense):
    """Prune BN neurons whose clean statistics diverge from the stored running statistics."""

    config: BNPConfig

    def run(self, inputs: DefenseInputs) -> DefenseOutput:
        c = self.config
        model = inputs.model
        layers = batchnorms(model)
        inspected = layers if c.layers == "all" else layers[-1:]
        # per-sample spatial means of x and x^2 give the exact per-channel mean and variance over all positions
        moments = bn_inputs(model, inputs.reserve.iter_batches(c.batch_size),
                            lambda x: torch.stack([x.mean((2, 3)), x.pow(2).mean((2, 3))], -1).double(), inspected)
        val_before = accuracy_on(model, inputs.val)
        pruned: dict[str, list[int]] = {}
        for name, bn in inspected:
            m = moments[name].mean(0)
            mu_c, var_c = m[:, 0], (m[:, 1] - m[:, 0] ** 2).clamp_min(0) + bn.eps
            mu_r, var_r = bn.running_mean.double(), bn.running_var.double() + bn.eps
            kl = gaussian_kl(mu_c, var_c, mu_r, var_r)
            idx = outliers_above(kl, c.u)
            zero_bn_scale(bn, idx)
            pruned[name] = idx.tolist()
        n = sum(len(v) for v in pruned.values())
        return DefenseOutput(model=model, info={
            "pruned": pruned, "pruned_count": n, "neurons": sum(bn.num_features for _, bn in layers),
            "val_acc_before": val_before, "val_acc_after": accuracy_on(model, inputs.val),
        })
