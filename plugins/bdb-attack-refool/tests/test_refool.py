"""Refool: the reflection model on hand-computed values, determinism, state, and the backdoor in miniature."""

import pytest
import torch

from bdcore import gaussian_blur
from bdcore.testing import attack_context
from bdb_attack_refool.attack import (GHOST, IN_FOCUS, OUT_OF_FOCUS, Refool, add_reflection,
                                      shift_image)
from bdb_attack_refool.config import RefoolConfig
from bdcore.testing import SHORT_EPOCHS as EPOCHS


def _one(v, n=1):
    return torch.full((n,), v)


def test_in_focus_reflection_mixes_in_linear_light():
    x = torch.tensor([[[[0.0, 0.5], [1.0, 0.2]]]])
    r = torch.tensor([[[[1.0, 0.25], [0.0, 0.6]]]])
    k = torch.tensor([IN_FOCUS])
    # gamma 1: plain alpha blend 0.4 x + 0.6 r
    out = add_reflection(x, r, k, _one(1.0), torch.zeros(1, 2, dtype=torch.long), _one(0.5), _one(0.4), 1.0)
    assert torch.allclose(out, 0.4 * x + 0.6 * r)
    # gamma 2.2 at x=0.5, r=0.25: (0.4 * 0.5^2.2 + 0.6 * 0.25^2.2)^(1/2.2) = (0.087055 + 0.028420)^(1/2.2) = 0.374850
    out = add_reflection(x, r, k, _one(1.0), torch.zeros(1, 2, dtype=torch.long), _one(0.5), _one(0.4), 2.2)
    assert abs(out[0, 0, 0, 1].item() - 0.374850) < 1e-5
    assert out[0, 0, 0, 0].item() == pytest.approx(0.6 ** (1 / 2.2))  # x=0, r=1


def test_ghost_is_attenuated_shifted_copy():
    # reflection: one white pixel at (0, 0); ghost shift (1, 2), b = 0.25, alpha_t = 0.5, gamma 1, x = 0:
    # R_k = 0.25 at (0,0) + 0.75 at (1,2); output 0.5 * R_k -> 0.125 and 0.375, zero elsewhere
    r = torch.zeros(1, 1, 4, 4)
    r[0, 0, 0, 0] = 1.0
    out = add_reflection(torch.zeros_like(r), r, torch.tensor([GHOST]), _one(1.0), torch.tensor([[1, 2]]),
                         _one(0.25), _one(0.5), 1.0)
    expected = torch.zeros(4, 4)
    expected[0, 0], expected[1, 2] = 0.125, 0.375
    assert torch.allclose(out[0, 0], expected)
    # shifts past the border drop the copy
    assert shift_image(r, torch.tensor([[4, 0]])).sum() == 0


def test_out_of_focus_is_gaussian_blur_of_random_sigma():
    # sigma 1 -> radius 2, 1-D weights exp(-t^2/2)/2.483732 for t in -2..2;
    # a centred impulse gives 1/2.483732^2 = 0.162103 at the centre and 0.606531/2.483732^2 = 0.098320 next to it
    d = torch.zeros(2, 1, 9, 9)
    d[:, 0, 4, 4] = 1.0
    out = gaussian_blur(d, torch.tensor([1.0, 2.0]), truncate=2.0)  # bdcore's, as Refool calls it
    assert out[0, 0, 4, 4].item() == pytest.approx(0.162103, abs=1e-6)
    assert out[0, 0, 4, 5].item() == pytest.approx(0.098320, abs=1e-6)
    assert out[0, 0, 4, 7].item() == 0.0  # beyond radius ceil(2 sigma) = 2
    assert out[1, 0, 4, 7].item() > 0.0  # sigma 2: radius 4
    assert torch.allclose(out.sum(dim=(1, 2, 3)), torch.ones(2), atol=1e-5)
    r = d[:1]
    via_model = add_reflection(torch.zeros_like(r), r, torch.tensor([OUT_OF_FOCUS]), _one(1.0),
                               torch.zeros(1, 2, dtype=torch.long), _one(0.5), _one(0.0 + 1e-9), 1.0)
    assert torch.allclose(via_model, out[:1], atol=1e-6)


def test_parameters_are_deterministic_per_sample_and_follow_the_rates(mnist5k):
    a = Refool(RefoolConfig(), attack_context(seed=123))
    a.prepare(mnist5k)
    idx = torch.arange(4000)
    p1, p2 = a.params(idx, True), a.params(idx, True)
    assert all(torch.equal(u, v) for u, v in zip(p1, p2))
    assert not torch.equal(a.params(idx, False).which, p1.which)  # test split draws its own
    ghost = (p1.kind == GHOST).float().mean().item()
    assert abs(ghost - 0.49) < 0.03 and not bool((p1.kind == IN_FOCUS).any())  # in_focus_rate 0 by default
    assert p1.sigma.min() >= 1.0 and p1.sigma.max() <= 5.0
    assert p1.shift.min() >= 3 and p1.shift.max() <= 8
    assert len(p1.which.unique()) == 200
    x = mnist5k.x_train[:8].float() / 255
    o1 = a.apply_trigger(x, train=True, idx=torch.arange(8))
    o2 = a.apply_trigger(x.flip(0), train=True, idx=torch.arange(8).flip(0)).flip(0)
    assert torch.allclose(o1, o2, atol=1e-6)  # a sample's poison does not depend on its batch
    assert o1.min() >= 0 and o1.max() <= 1


def test_candidates_are_non_target_training_images_and_state_rebuilds_trigger(mnist5k):
    a = Refool(RefoolConfig(num_reflections=16), attack_context(seed=123))
    a.prepare(mnist5k)
    src = a.state()["reflection_source"]
    assert len(src) == 16 and bool((mnist5k.y_train[src] != 0).all())
    assert torch.equal(a.reflections, mnist5k.x_train[src].float() / 255)
    b = Refool(RefoolConfig(num_reflections=16), attack_context(seed=123))
    b.load_state(a.state())
    x = mnist5k.x_test[:32].float() / 255
    idx = torch.arange(32)
    assert torch.equal(a.test_trigger(x, idx), b.test_trigger(x, idx))
    c = Refool(RefoolConfig(num_reflections=16), attack_context(seed=124))
    c.prepare(mnist5k)
    assert not torch.equal(c.state()["reflection_source"], src)  # chosen with the run's seed


def test_clean_label_variant_poisons_only_target_class_and_keeps_labels(mnist5k):
    a = Refool(RefoolConfig(clean_label=True), attack_context(seed=123, pratio=0.05))
    pidx = a.poison_indices(mnist5k.y_train, torch.Generator().manual_seed(0))
    assert len(pidx) == 200 and bool((mnist5k.y_train[pidx] == 0).all())
    y = mnist5k.y_train[pidx]
    assert torch.equal(a.poison_y(y, pidx), y)
    dirty = Refool(RefoolConfig(), attack_context(seed=123, pratio=0.05))
    didx = dirty.poison_indices(mnist5k.y_train, torch.Generator().manual_seed(0))
    assert bool((mnist5k.y_train[didx] == 0).any())  # the reference's pool: every sample
    assert bool((dirty.poison_y(mnist5k.y_train[didx], didx) == 0).all())


def test_reflections_from_a_directory(tmp_path, mnist5k):
    from PIL import Image

    for i in range(3):
        Image.new("RGB", (12, 10), (40 * (i + 1),) * 3).save(tmp_path / f"r{i}.png")
    (tmp_path / "notes.txt").write_text("ignored")
    a = Refool(RefoolConfig(reflection_dir=str(tmp_path), num_reflections=2), attack_context(seed=123))
    a.prepare(mnist5k)
    assert a.reflections.shape == (2, 1, 28, 28)  # grayscale, resized to the data's size
    assert set(a.reflections.flatten().mul(255).round().unique().tolist()) <= {40.0, 80.0, 120.0}


def test_backdoor_in_miniature(backdoored_run, clean_run):
    # measured (mnist5k, small-cnn, 15 epochs, lr 0.1, seed 0, pratio 0.1, 200 reflections):
    # C-ACC 0.977, ASR 0.996, RA 0.004; clean model C-ACC 0.977
    # at SHORT_EPOCHS = 10 (session 9, one thread): C-ACC 0.972, ASR 0.999, RA 0.001;
    # clean model at 10 epochs: C-ACC 0.967 (at 15: 0.977)
    run = backdoored_run("refool", epochs=EPOCHS)
    assert run.metrics["poisoned"] == 400
    assert run.metrics["asr"] >= 0.95
    assert run.metrics["cacc"] >= clean_run.metrics["cacc"] - 0.02
