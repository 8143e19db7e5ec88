"""Blended: the blend on hand-computed values, user trigger images, and the backdoor in miniature."""

import pytest
import torch

from bdcore import BdbError

from bdcore import random_pattern
from bdcore.testing import attack_context

from bdb_attack_blended.attack import Blended
from bdb_attack_blended.config import BlendedConfig


def test_blend_is_convex_combination_with_train_and_test_alpha():
    ctx = attack_context(shape=(1, 4, 4), dataset="t", model="m")
    attack = Blended(BlendedConfig(alpha_train=0.2, alpha_test=0.5), ctx)
    attack.pattern = torch.ones(1, 4, 4)
    x = torch.full((2, 1, 4, 4), 0.5)
    # train: 0.8 * 0.5 + 0.2 * 1 = 0.6; test: 0.5 * 0.5 + 0.5 * 1 = 0.75
    assert torch.allclose(attack.apply_trigger(x, train=True), torch.full_like(x, 0.6))
    assert torch.allclose(attack.apply_trigger(x, train=False), torch.full_like(x, 0.75))


def test_random_pattern_is_fixed_by_seed():
    a, b = random_pattern((3, 8, 8), 0), random_pattern((3, 8, 8), 0)
    assert torch.equal(a, b) and not torch.equal(a, random_pattern((3, 8, 8), 1))
    assert a.min() >= 0 and a.max() <= 1 and a.std() > 0.2


def test_user_trigger_image_is_resized_and_converted(tmp_path):
    from PIL import Image

    img = Image.new("RGB", (16, 16), (255, 255, 255))
    img.paste((0, 0, 0), (0, 0, 8, 16))  # left half black
    path = tmp_path / "t.png"
    img.save(path)
    attack = Blended(BlendedConfig(trigger_image=str(path)), attack_context(shape=(1, 4, 4), dataset="t", model="m"))
    assert attack.pattern.shape == (1, 4, 4)
    # the reference's resize: Pillow bilinear on uint8, antialiased when shrinking, so the edge blurs
    import numpy as np

    expected = np.asarray(img.convert("L").resize((4, 4), Image.BILINEAR), dtype=np.float32) / 255
    assert torch.equal(attack.pattern[0], torch.from_numpy(expected))
    assert (attack.pattern[0, :, 0] == 0).all() and (attack.pattern[0, :, 3] == 1).all()
    assert 0 < float(attack.pattern[0, 0, 1]) < 0.5 < float(attack.pattern[0, 0, 2]) < 1


def test_bad_trigger_image_is_a_clear_error(tmp_path):
    ctx = attack_context(shape=(1, 4, 4), dataset="t", model="m")
    with pytest.raises(BdbError, match="not found"):
        Blended(BlendedConfig(trigger_image=str(tmp_path / "none.png")), ctx)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(BdbError, match="not a readable image"):
        Blended(BlendedConfig(trigger_image=str(bad)), ctx)


def test_backdoor_in_miniature(backdoored_run, clean_run):
    # measured (mnist5k, small-cnn, 15 epochs, lr 0.1, seed 0): C-ACC 0.974, ASR 1.000, RA 0.000;
    # clean model C-ACC 0.97x; PSNR ~19 dB
    run = backdoored_run("blended")
    assert run.metrics["asr"] >= 0.95
    assert run.metrics["cacc"] >= clean_run.metrics["cacc"] - 0.02
    assert 15 < run.metrics["psnr"] < 25
