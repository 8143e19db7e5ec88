"""Poison Ink: the Sobel edges and the trigger image on hand-made images, the network loss, the container, the
victim's batches (clean batch + poisoned batch), and the attack in miniature."""

import json
import math

import pytest
import torch

from bdb_attack_poison_ink.attack import (LOSS_SCALE, InkLoss, InkNet, color_of, edge_mask, edge_trigger, luma255,
                                          sobel_magnitude)
from bdb_attack_poison_ink.config import PoisonInkConfig
from bdcore import StepInfo, TrainHook, TrainRecipe, TrainSet, train
from bdcore.testing import SHORT_EPOCHS

# the miniature: a hiding U-Net of width 8 (2 levels), a reveal network of width 8, one crop stage of one epoch in
# batches of 64 at Adam 1e-3 (the reference: width 64, 4 levels, reveal 128, stages of 200 epochs, batches of 32 at
# 2e-4). network_seed 1: at reveal width 8, PyTorch's default bias of the last convolution (+-1/sqrt(8)) outweighs
# the N(0, 0.02) weights, and with seed 0 it is negative, so the ReLU output starts dead and reveals nothing (chosen
# on the networks' outputs, not on a victim)
MINI = {"width": 8, "depth": 2, "reveal_width": 8, "stages": ["crop"], "epochs": 1, "batch_size": 64, "lr": 1e-3,
        "network_seed": 1}
EPOCHS = SHORT_EPOCHS // 2  # each step trains on two batches: 5 epochs see as many images as 10 of the clean run
TINY = {"width": 4, "depth": 2, "reveal_width": 4, "stages": ["none"], "epochs": 1, "batch_size": 256, "lr": 1e-3}
GREEN = torch.tensor([80, 160, 80]) / 255.0  # the reference's trigger colour


def _attack(shape=(1, 28, 28), **settings):
    from bdcore.testing import attack_context, spec_of

    ctx = attack_context(shape=shape, batch_size=settings.pop("victim_batch", 128))
    return spec_of("attack", "poison-ink").load()(PoisonInkConfig(**settings), ctx)


def _step(levels: int, size: int = 6, at: int = 3, channels: int = 1) -> torch.Tensor:
    """A (1, C, size, size) image: 0 left of column `at`, `levels`/255 from it on."""
    x = torch.zeros(1, channels, size, size)
    x[..., at:] = levels / 255.0
    return x


def test_sobel_edges_are_the_magnitude_above_28_with_scikit_images_normalisation():
    # a step of a levels between columns 2 and 3: the derivative [1, 0, -1] is a on both columns, the smoothing
    # [1, 2, 1] / 4 keeps it, so the magnitude there is sqrt(a^2 / 2) = a / sqrt(2), 0 elsewhere
    mag = sobel_magnitude(luma255(_step(40)))[0, 0]
    expected = torch.zeros(6, 6)
    expected[:, 2:4] = 40 / math.sqrt(2)  # 28.28
    assert torch.allclose(mag, expected, atol=1e-4)
    edges = torch.zeros(6, 6, dtype=torch.bool)
    edges[:, 2:4] = True
    assert torch.equal(edge_mask(_step(40))[0, 0], edges)  # 28.28 > 28
    assert not edge_mask(_step(39)).any()  # 27.58: below the threshold
    assert torch.equal(edge_mask(_step(40).transpose(-1, -2))[0, 0], edges.t())  # a horizontal edge: rows 2, 3
    assert not edge_mask(_step(60), threshold=60 / math.sqrt(2) + 0.01).any()
    border = torch.zeros(6, 6, dtype=torch.bool)
    border[:, :2] = True  # the border pixel is repeated outside the image: column 0 sees 0 | 0 | 40
    assert torch.equal(edge_mask(_step(40, at=1))[0, 0], border)
    # RGB: the BT.601 luma on the 0-255 scale; a green step of 68 levels has luma 39.9 (edge), of 67, 39.3 (none)
    green = torch.zeros(1, 3, 6, 6)
    green[:, 1, :, 3:] = 68 / 255.0
    assert torch.equal(edge_mask(green)[0, 0], edges)
    green[:, 1, :, 3:] = 67 / 255.0
    assert not edge_mask(green).any()
    assert not edge_mask(torch.full((2, 3, 6, 6), 0.4)).any()  # no structure, no edges


def test_trigger_is_the_edges_in_80_160_80_on_a_white_canvas():
    x = _step(40, channels=3)
    t = edge_trigger(x, PoisonInkConfig())
    assert t.shape == (1, 3, 6, 6)
    assert torch.allclose(t[0, :, :, 2:4], GREEN.view(3, 1, 1).expand(3, 6, 2))
    assert torch.equal(t[0, :, :, :2], torch.ones(3, 6, 2)) and torch.equal(t[0, :, :, 4:], torch.ones(3, 6, 2))
    assert torch.equal(edge_trigger(torch.full((1, 3, 6, 6), 0.3), PoisonInkConfig()), torch.ones(1, 3, 6, 6))
    # one channel: the BT.601 luma of the colour, (0.299 * 80 + 0.587 * 160 + 0.114 * 80) / 255
    grey = edge_trigger(_step(40), PoisonInkConfig())
    assert torch.allclose(grey[0, 0, :, 2:4], torch.full((6, 2), 126.96 / 255.0))
    assert torch.equal(grey[0, 0, :, :2], torch.ones(6, 2))
    assert torch.allclose(color_of(PoisonInkConfig(color=[51]), 3), torch.full((3,), 0.2))
    from bdcore import BdbError

    with pytest.raises(BdbError, match="give 1 value"):
        _attack(color=[255, 0], **TINY)  # before any training


def test_network_loss_on_hand_set_networks():
    # a hiding network that outputs 0 and a reveal network that outputs 0 (ReLU(0)): the loss is
    # 1e4 (MSE(0, x) + 13 mean((T M)^2) + mean((T (1 - M))^2) + 100 MSE(0, white))
    net = InkNet(1, 4, 1, 4)  # one level: 6 -> 3 pixels
    for p in [*net.hide.outc.parameters(), *net.reveal.tail[-2].parameters()]:
        torch.nn.init.zeros_(p)
    x = _step(255)  # 18 of 36 pixels at 1; edges on columns 2 and 3 (12 pixels)
    c = 126.96 / 255.0
    expected = LOSS_SCALE * (18 / 36 + 13 * 12 * c**2 / 36 + 24 / 36 + 100)
    step = StepInfo(0, 0, 1, torch.Generator().manual_seed(0))
    loss = InkLoss(PoisonInkConfig(), "none").loss(net.train(), x, torch.zeros(1, dtype=torch.long), step)
    assert abs(loss.item() - expected) / expected < 1e-6


def test_container_is_the_hiding_networks_clipped_output():
    a = _attack(**TINY)
    x = torch.rand(3, 1, 28, 28)
    out = a.apply_trigger(x, train=True)
    raw = a.net.hide(torch.cat([x, edge_trigger(x, a.config)], 1))  # the output itself, no residual added
    assert torch.equal(out, raw.clamp(0, 1)) and raw.shape == x.shape
    assert torch.equal(a.poison_y(torch.tensor([3, 7]), torch.arange(2)), torch.zeros(2, dtype=torch.long))
    b = _attack(network_seed=5, **TINY)
    b.load_state(a.state())
    assert torch.equal(b.apply_trigger(x, train=False), out)
    assert len(InkNet(3, 64, 4, 128).hide.downs) == 4  # the reference's U-Net: 4 levels, 64 to 512 channels
    assert InkNet(3, 64, 4, 128).hide.downs[-1][1][0].out_channels == 512


class _Seen(TrainHook):
    """Records every batch the victim trains on, after the attack's hook."""

    def __init__(self, hook) -> None:
        self.hook, self.batches = hook, []

    def on_batch(self, x, y, step):
        self.batches.append((step.epoch, x.clone(), y.clone(), self.hook.last_idx.clone()))
        return x, y


def test_victim_trains_on_each_clean_batch_plus_a_batch_of_the_poisoned_set():
    from bdcore.testing import poison_train_set

    n, b = 50, 16
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, 1, 8, 8), dtype=torch.uint8, generator=gen)
    y = torch.randint(1, 10, (n,), generator=gen)
    a = _attack(shape=(1, 8, 8), victim_batch=b, **TINY)
    pidx = a.poison_indices(y, torch.Generator().manual_seed(1))
    assert len(pidx) == 5
    hook = a.train_hook()
    seen = _Seen(hook)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    stats = train(model, TrainSet(x, y, hflip=False), TrainRecipe(epochs=2, batch_size=b, lr=0.01), seed=0,
                  hooks=[hook, seen])
    assert stats.images == 2 * (n + n)  # every clean sample and every sample of the poisoned set, each epoch
    poisoned = poison_train_set(x, y, a, pidx)  # what the harness materialises after training
    for epoch in (0, 1):
        batches = [s for s in seen.batches if s[0] == epoch]
        assert len(batches) == math.ceil(n / b)
        idx = torch.cat([s[3] for s in batches])
        assert torch.equal(idx.sort().values, torch.arange(n))  # the poisoned set once per epoch
        for _, xb, yb, i in batches:
            k = len(yb) - len(i)  # the clean part first, then the poisoned batch, not augmented
            xp, yp = poisoned.batch(i)
            assert torch.equal(xb[k:], xp) and torch.equal(yb[k:], yp)
            assert torch.equal(yb[k:][torch.isin(i, pidx)], torch.zeros(int(torch.isin(i, pidx).sum()),
                                                                        dtype=torch.long))
        # the poisoned batches are cut once and taken in order from the epoch's random start, cycling
        m = len(hook.batches)
        start = next(j for j in range(m) if torch.equal(hook.batches[j], batches[0][3]))
        assert all(torch.equal(s[3], hook.batches[(start + j) % m]) for j, s in enumerate(batches))
    is_poison = torch.isin(torch.arange(n), pidx)
    assert not torch.equal(poisoned.x[is_poison], x[is_poison]) and torch.equal(poisoned.x[~is_poison], x[~is_poison])


def test_backdoor_in_miniature(backdoored_run, clean_run_short):
    # measured (mnist5k, small-cnn, 5 epochs of 128 clean + 128 poisoned-set images per step, lr 0.1, pratio 0.1;
    # MINI) on AVX-512 seeds 0, 1, 2 and AVX2 seed 0: C-ACC 0.945 / 0.943 / 0.953 / 0.948 (the clean model at 10
    # epochs 0.971 / 0.968 / 0.972 / 0.968: drop 0.019-0.026), ASR 0.900 / 0.941 / 0.958 / 0.897, RA 0.041-0.101,
    # PSNR 25.36-25.43. Before issue 26 (Canny on black, residual output, originals replaced): C-ACC 0.958-0.965,
    # ASR 0.991-0.999, PSNR 29.1
    run = backdoored_run("poison-ink", settings=MINI, epochs=EPOCHS)
    assert run.metrics["poisoned"] == 400
    seen = run.metrics["images_per_second"] * run.metrics["train_seconds"]
    assert abs(seen - EPOCHS * 2 * 4000) < 10  # clean originals kept: 4,000 clean + 4,000 of the poisoned set
    assert run.metrics["asr"] >= 0.84
    assert run.metrics["cacc"] >= clean_run_short.metrics["cacc"] - 0.05
    assert run.metrics["ra"] <= 0.16
    assert run.metrics["psnr"] >= 24


def test_second_run_reuses_the_trained_networks(backdoored_run):
    # on the 8x8 digits with the conformance settings: the cache is what is tested, not the networks
    first = backdoored_run("poison-ink", settings=TINY, dataset="digits", epochs=1)
    again = backdoored_run("poison-ink", settings=TINY, dataset="digits", pratio=0.05, epochs=1)
    built = [[(u["name"], u["built"]) for u in json.loads(r.file("meta.json").read_text())["artifacts"]]
             for r in (first, again)]
    assert built[1] == [("poison-ink-networks", False)] and built[0][0][0] == "poison-ink-networks"
