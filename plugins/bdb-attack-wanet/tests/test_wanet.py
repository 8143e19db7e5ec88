"""WaNet: warp math on hand-computed values, trigger reproducibility, and the backdoor in miniature."""

import torch

from bdcore import StepInfo
from bdcore.testing import attack_context

from bdb_attack_wanet.attack import (
    WaNet, identity_grid, noise_grid, random_control_grid, warp, warp_grid, warping_field,
)
from bdb_attack_wanet.config import WaNetConfig


def test_identity_grid_reproduces_the_image():
    x = torch.rand(2, 3, 5, 7)
    assert torch.allclose(warp(x, identity_grid(5, 7)), x, atol=1e-6)


def test_field_is_normalised_by_mean_absolute_value():
    control = torch.tensor([[[[2.0, -2.0], [2.0, -2.0]], [[1.0, 1.0], [-3.0, -3.0]]]])  # mean |P| = 2
    field = warping_field(control, 2, 2)  # 2x2 -> 2x2 bicubic with align_corners keeps the corners
    assert torch.allclose(field[0, ..., 0], torch.tensor([[1.0, -1.0], [1.0, -1.0]]))
    assert torch.allclose(field[0, ..., 1], torch.tensor([[0.5, 0.5], [-1.5, -1.5]]))


def test_warped_pixels_by_hand():
    # constant control grid -> field = 1 everywhere (bicubic weights sum to 1, mean |P| = 1);
    # 4x4 image, s = 0.5: grid = identity + 0.5 / 4 = identity + 0.125 in [-1, 1] coordinates, i.e.
    # +0.125 / (2 / 3) = 0.1875 pixel in x and y; the last row/column is clamped to the border.
    # x[i, j] = (4i + j) / 16 is linear, so bilinear sampling at (i + 0.1875, j + 0.1875) gives
    # (4 (i + 0.1875) + j + 0.1875) / 16 = x[i, j] + 0.9375 / 16 inside, and at the last column
    # (j = 3, clamped) x[i, 3] + 0.75 / 16; the bottom-right pixel stays 15 / 16.
    grid = warp_grid(torch.full((1, 2, 4, 4), 0.3), 4, 4, 0.5)
    x = (torch.arange(16.0) / 16).view(1, 1, 4, 4)
    out = warp(x, grid)[0, 0]
    assert torch.isclose(out[0, 0], torch.tensor(0.9375 / 16), atol=1e-6)
    assert torch.isclose(out[1, 2], torch.tensor((6 + 0.9375) / 16), atol=1e-6)
    assert torch.isclose(out[2, 3], torch.tensor((11 + 0.75) / 16), atol=1e-6)
    assert torch.isclose(out[3, 1], torch.tensor((13 + 0.1875) / 16), atol=1e-6)
    assert torch.isclose(out[3, 3], torch.tensor(15 / 16), atol=1e-6)


def test_grid_is_clamped_and_close_to_identity():
    grid = warp_grid(random_control_grid(4, 0), 28, 28, 0.5)
    assert grid.shape == (1, 28, 28, 2)
    assert grid.abs().max() <= 1
    field = warping_field(random_control_grid(4, 0), 28, 28)
    assert torch.isclose(warping_field(random_control_grid(4, 0), 4, 4).abs().mean(), torch.tensor(1.0))
    inner = (grid - identity_grid(28, 28))[:, 1:-1, 1:-1]
    assert torch.allclose(inner, (0.5 * field / 28)[:, 1:-1, 1:-1], atol=1e-6)


def test_noise_grid_stays_within_one_pixel_scale():
    grid = warp_grid(random_control_grid(4, 0), 8, 8, 0.5)
    noisy = noise_grid(grid, 5, torch.Generator().manual_seed(1))
    assert noisy.shape == (5, 8, 8, 2)
    assert ((noisy - grid).abs() <= 1 / 8 + 1e-6).all() and noisy.abs().max() <= 1


def test_trigger_is_a_function_of_the_seed_and_survives_state():
    a = WaNet(WaNetConfig(), attack_context(seed=7, dataset="x", model="y"))
    b = WaNet(WaNetConfig(), attack_context(seed=7, dataset="x", model="y"))
    c = WaNet(WaNetConfig(), attack_context(seed=8, dataset="x", model="y"))
    assert torch.equal(a.grid, b.grid) and not torch.equal(a.grid, c.grid)
    c.load_state(a.state())
    x = torch.rand(3, 1, 28, 28)
    assert torch.equal(c.apply_trigger(x, train=False), a.apply_trigger(x, train=False))
    # training-controlled: the hook poisons in the step; after training the harness materialises
    # pratio of the samples with the final warp (the reference's poisoned training set)
    assert a.training_controlled and a.poison_count(4000) == 400


def test_hook_warps_relabels_and_adds_noise_mode():
    attack = WaNet(WaNetConfig(), attack_context(dataset="x", model="y"))
    x, y = torch.rand(128, 1, 28, 28), torch.randint(1, 10, (128,))
    step = StepInfo(0, 0, 1, torch.Generator().manual_seed(0))
    x2, y2 = attack.train_hook().on_batch(x, y, step)
    # 12 backdoor samples (int(128 * 0.1)) to the target, 24 noise-mode samples keep their labels
    assert torch.equal(y2[:12], torch.zeros(12, dtype=torch.long)) and torch.equal(y2[12:], y[12:])
    assert torch.allclose(x2[:12], attack.apply_trigger(x[:12], train=True))
    assert not torch.allclose(x2[12:36], attack.apply_trigger(x[12:36], train=True))
    assert torch.equal(x2[36:], x[36:])


def test_backdoor_in_miniature(backdoored_run, clean_run):
    # measured (mnist5k, small-cnn, 15 epochs, lr 0.1, seed 0, paper defaults k 4, s 0.5, cross 2):
    # C-ACC 0.971, ASR 0.976, RA 0.024; clean model C-ACC 0.977. Chance ASR is ~0.1.
    run = backdoored_run("wanet")
    assert run.metrics["poisoned"] == 400  # the materialised poisoned training set (pratio, final trigger)
    assert run.metrics["asr"] >= 0.90
    assert run.metrics["cacc"] >= clean_run.metrics["cacc"] - 0.02
