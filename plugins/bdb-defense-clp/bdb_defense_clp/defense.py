"""Channel Lipschitzness-based Pruning (CLP): data-free backdoor removal.

For a convolution followed by batch normalisation, channel k computes
    y_k = gamma_k / sigma_k * (W_k * x) + (beta_k - gamma_k * mu_k / sigma_k),
so its Lipschitz constant w.r.t. the layer input is bounded by the spectral norm of the scaled
kernel  UCLC_k = || gamma_k / sigma_k * W_k ||_2, with W_k reshaped to (in_channels, kh * kw).
Channels whose UCLC is an outlier within their layer (> mean + u * std) are taken to be trigger
sensitive and pruned (their BN output set to zero). No data is used.
"""

from __future__ import annotations

import torch
from torch import nn

from bdcore import Defense, DefenseInputs, DefenseOutput
from bdcore import conv_bn_pairs, zero_channels

from bdb_defense_clp.config import CLPConfig


@torch.no_grad()
def channel_lipschitz_upper_bounds(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> torch.Tensor:
    """UCLC of every output channel of conv->BN: spectral norm of gamma_k/sigma_k * W_k, shape (C,)."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    w = conv.weight * scale.view(-1, 1, 1, 1)
    return torch.linalg.matrix_norm(w.flatten(2).float(), ord=2)


def outlier_channels(uclc: torch.Tensor, u: float) -> torch.Tensor:
    """Indices of channels with UCLC > mean + u * std (std with Bessel's correction)."""
    if uclc.numel() < 2:
        return torch.empty(0, dtype=torch.long)
    threshold = uclc.mean() + u * uclc.std()
    return torch.nonzero(uclc > threshold).flatten().cpu()


class CLP(Defense):
    """Prune, in every conv->BN pair, the channels whose UCLC is an upper outlier of their layer."""

    config: CLPConfig

    def run(self, inputs: DefenseInputs) -> DefenseOutput:
        model = inputs.model
        pairs = conv_bn_pairs(model)
        pruned: dict[str, int] = {}
        for conv_name, conv, bn_name, bn in pairs:
            idx = outlier_channels(channel_lipschitz_upper_bounds(conv, bn), self.config.u)
            zero_channels(bn, idx)
            pruned[bn_name] = int(idx.numel())
        total = sum(bn.num_features for _, _, _, bn in pairs)
        info = {
            "u": self.config.u,
            "layers": len(pairs),
            "pruned_per_layer": pruned,
            "pruned_total": sum(pruned.values()),
            "channels_total": total,
        }
        if not info["pruned_total"]:
            info["unchanged"] = f"no channel's Lipschitz bound exceeds its layer's mean + {self.config.u} std"
        return DefenseOutput(model=model.eval(), info=info)
