"""ASSET: the Gaussian-mixture cut and the aimed discriminator on synthetic features."""

import numpy as np
import torch

from bdb_defense_asset.defense import aim, gmm_flags


def test_gmm_flags_the_high_loss_mode():
    rng = np.random.default_rng(0)
    losses = np.concatenate([rng.normal(1.0, 0.1, 90), rng.normal(10.0, 0.5, 10)])
    flags, cut = gmm_flags(losses, 0)
    assert flags[90:].all() and not flags[:90].any()
    assert cut == losses[90:].min()


def test_the_discriminator_singles_out_samples_unlike_the_base_set():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    base = torch.randn(64, 8, generator=gen)
    pos = torch.cat([torch.randn(60, 8, generator=gen), torch.randn(4, 8, generator=gen) + 6])
    sel = aim(pos, base, hidden=128, steps=100, lr=1e-4, outlier=2.0)  # the reference's short training
    assert sel[60:].all() and int(sel[:60].sum()) <= 2  # measured: the 4 shifted samples and 1 other
    # (trained much longer the discriminator memorises the batch and singles out nothing: the short run is the point)
