"""BppAttack: squeezing and dithering on hand-computed values, negatives, and the backdoor in miniature."""

import torch

from bdcore import StepInfo

from bdb_attack_bpp.attack import Bpp, floyd_steinberg, squeeze
from bdb_attack_bpp.config import BppConfig
from bdcore.testing import SHORT_EPOCHS as EPOCHS
from bdcore.testing import attack_context


def _attack(shape=(1, 28, 28), pratio=0.1, **settings):
    ctx = attack_context(shape=shape, pratio=pratio, dataset="x", model="y")
    return Bpp(BppConfig(**settings), ctx)


def test_squeeze_to_8_levels_by_hand():
    # levels k/7: 0.5 -> round(3.5) = 4 -> 4/7; 0.2 -> round(1.4) = 1 -> 1/7; 130/255 -> round(3.569) = 4 -> 4/7;
    # 0.92 -> round(6.44) = 6 -> 6/7
    x = torch.tensor([0.0, 0.2, 0.5, 130 / 255, 0.92, 1.0])
    expected = torch.tensor([0.0, 1 / 7, 4 / 7, 4 / 7, 6 / 7, 1.0])
    assert torch.allclose(squeeze(x, 8), expected)
    img = torch.full((2, 3, 4, 4), 0.2)
    assert torch.allclose(_attack(shape=(3, 4, 4)).apply_trigger(img, train=False), torch.full_like(img, 1 / 7))


def test_floyd_steinberg_by_hand():
    # 2x2 image of 0.4, two levels {0, 1}; weights 7/16 right, 3/16 below-left, 5/16 below, 1/16 below-right
    # (0,0): 0.4 -> 0, error 0.4:     (0,1) = 0.4 + 0.175 = 0.575, (1,0) = 0.4 + 0.125 = 0.525,
    #                                  (1,1) = 0.4 + 0.025 = 0.425
    # (0,1): 0.575 -> 1, error -0.425: (1,0) = 0.525 - 0.0797 = 0.4453, (1,1) = 0.425 - 0.1328 = 0.2922
    # (1,0): 0.4453 -> 0, error 0.4453: (1,1) = 0.2922 + 0.1948 = 0.4870
    # (1,1): 0.4870 -> 0
    out = floyd_steinberg(torch.full((1, 1, 2, 2), 0.4, dtype=torch.float64), 2)
    assert torch.equal(out[0, 0], torch.tensor([[0.0, 1.0], [0.0, 0.0]], dtype=torch.float64))


def _raster_floyd_steinberg(img: torch.Tensor, levels: int) -> torch.Tensor:
    """Textbook raster-order Floyd-Steinberg on one (C, H, W) image, for comparison."""
    img = img.clone()
    m = levels - 1
    _, h, w = img.shape
    out = torch.empty_like(img)
    for i in range(h):
        for j in range(w):
            v = img[:, i, j].clone()
            q = torch.round(v * m).clamp(0, m) / m
            out[:, i, j] = q
            e = v - q
            if j + 1 < w:
                img[:, i, j + 1] += e * 7 / 16
            if i + 1 < h and j > 0:
                img[:, i + 1, j - 1] += e * 3 / 16
            if i + 1 < h:
                img[:, i + 1, j] += e * 5 / 16
            if i + 1 < h and j + 1 < w:
                img[:, i + 1, j + 1] += e * 1 / 16
    return out


def test_vectorised_dithering_equals_raster_order():
    x = torch.rand(3, 3, 9, 7, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ref = torch.stack([_raster_floyd_steinberg(xi, 8) for xi in x])
    assert torch.equal(floyd_steinberg(x, 8), ref)
    levels = torch.unique(floyd_steinberg(x, 8) * 7)
    assert torch.allclose(levels, levels.round())  # only the 8 levels


def test_one_channel_and_dithering_option():
    x = torch.rand(4, 1, 28, 28)
    plain = _attack().apply_trigger(x, train=False)
    dith = _attack(dithering=True).apply_trigger(x, train=False)
    assert plain.shape == dith.shape == x.shape
    assert not torch.equal(plain, dith)
    # dithering keeps the local mean closer to the original than plain squeezing on a flat grey image
    grey = torch.full((1, 1, 16, 16), 0.3)
    assert (floyd_steinberg(grey, 8).mean() - 0.3).abs() < (squeeze(grey, 8).mean() - 0.3).abs()


def test_hook_squeezes_relabels_and_makes_negatives():
    attack = _attack(pratio=0.1)
    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(128, 1, 28, 28, generator=gen), torch.randint(1, 10, (128,), generator=gen)
    x2, y2 = attack.train_hook().on_batch(x, y, StepInfo(0, 0, 1, torch.Generator().manual_seed(0)))
    # 12 squeezed samples with the target label, 12 negatives and 104 clean samples keep their labels
    assert torch.equal(y2[:12], torch.zeros(12, dtype=torch.long)) and torch.equal(y2[12:], y[12:])
    assert torch.equal(x2[:12], squeeze(x[:12], 8))
    assert torch.equal(x2[24:], x[24:])
    neg = x2[12:24]
    # each negative is its clean image plus the quantisation residual of another image of the batch
    residuals = squeeze(x, 8) - x
    for k in range(12):
        diffs = ((x[12 + k] + residuals).clamp(0, 1) - neg[k]).flatten(1).abs().amax(1)
        src = int(diffs.argmin())
        assert diffs[src] < 1e-6 and src != 12 + k
    assert not torch.allclose(neg, squeeze(x[12:24], 8))


def test_backdoor_in_miniature(backdoored_run, clean_run):
    # The reference setting (8 levels) measured C-ACC 0.957, ASR 0.032, RA 0.951 in this 15-epoch
    # miniature (MNIST strokes barely change under 8-level squeezing; see README), so the test uses
    # 2 levels, neg ratio 0.1: measured (mnist5k, small-cnn, 15 epochs, lr 0.1, seed 0)
    # C-ACC 0.975, ASR 0.997, RA 0.003; clean model C-ACC 0.977. Chance ASR is ~0.1.
    # at SHORT_EPOCHS = 10 (session 9, one thread): C-ACC 0.970, ASR 0.996, RA 0.004;
    # clean model at 10 epochs: C-ACC 0.967 (at 15: 0.977)
    run = backdoored_run("bpp", settings={"squeeze_num": 2}, epochs=EPOCHS)
    assert run.metrics["poisoned"] == 400  # the materialised poisoned training set (pratio, final trigger)
    assert run.metrics["asr"] >= 0.95
    assert run.metrics["cacc"] >= clean_run.metrics["cacc"] - 0.02
