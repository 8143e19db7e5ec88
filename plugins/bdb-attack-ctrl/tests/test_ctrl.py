"""CTRL: the spectral trigger by hand, clean labels, and the backdoor in miniature."""

import json
import math

import pytest
import torch

from bdcore import dct2, rgb_to_yuv
from bdcore import spectral_trigger as ctrl_trigger
from bdb_attack_ctrl.config import CTRLConfig
from bdcore.testing import SHORT_EPOCHS as EPOCHS

REF = dict(magnitude=100.0, positions=((15, 15), (31, 31)), window=32)
MINIATURE_SETTINGS = {"magnitude": 200.0}
"""The miniature test's setting: on one-channel 28x28 digits the reference magnitude 100 gives a
partial backdoor only (measured ASR 0.438 at pratio 0.1, 0.008 at the reference pratio 0.05)."""


def _attack(shape, **settings):
    from bdcore.testing import attack_context, spec_of

    ctx = attack_context(shape=shape, pratio=0.05, dataset="x", model="y")
    return spec_of("attack", "ctrl").load()(CTRLConfig(**settings), ctx)


def _nontarget_accuracy(run, store) -> float:
    """Clean accuracy of a run's model on the test images whose label is not the target."""
    from bdcore.testing import load_attack_run
    from bdcore import predict

    _, cfg, data, _, model, _ = load_attack_run(run.run_id, store)
    keep = data.y_test != cfg.target
    return float((predict(model, data.x_test[keep]) == data.y_test[keep]).float().mean())


def test_rgb_trigger_moves_four_uv_coefficients_by_hand():
    x = torch.full((1, 3, 32, 32), 0.4, dtype=torch.float64)
    out = ctrl_trigger(x, **REF)
    diff = dct2(rgb_to_yuv(out) - rgb_to_yuv(x))[0]
    expected = torch.zeros(3, 32, 32, dtype=torch.float64)
    expected[1:, 15, 15] = expected[1:, 31, 31] = 100 / 255  # U and V; Y untouched
    assert torch.allclose(diff, expected, atol=1e-12)
    # pixel (0, 0): U and V both move by d = 100/255 * (2/32) * (cos^2(15 pi/64) + cos^2(31 pi/64)),
    # so B moves by 2.03211 d = 0.0274642 and R by 1.13983 d = 0.0154049
    d = 100 / 255 * (2 / 32) * (math.cos(15 * math.pi / 64) ** 2 + math.cos(31 * math.pi / 64) ** 2)
    assert (out - x)[0, 2, 0, 0].item() == pytest.approx(2.03211 * d, abs=1e-6) == pytest.approx(0.0274642, abs=1e-6)
    assert (out - x)[0, 0, 0, 0].item() == pytest.approx(1.13983 * d, abs=1e-6)


def test_channels_setting_and_blocks():
    x = torch.full((1, 3, 64, 32), 0.5, dtype=torch.float64)
    out = ctrl_trigger(x, **REF, channels=(2,))
    yuv = rgb_to_yuv(out) - rgb_to_yuv(x)
    assert yuv[0, :2].abs().max() < 1e-12  # only V carries it
    assert torch.allclose(out[..., :32, :], out[..., 32:, :])  # the same in both 32x32 blocks
    with pytest.raises(ValueError):
        CTRLConfig(channels=(1, 3))


def test_one_channel_uses_the_luminance_with_scaled_positions():
    # 28x28: the window becomes 28, positions (15,15),(31,31) -> (13,13),(27,27)
    x = torch.full((2, 1, 28, 28), 0.5)
    out = _attack((1, 28, 28)).apply_trigger(x, train=True)
    c = dct2((out - x).double())[0, 0]
    assert c[13, 13].item() == pytest.approx(100 / 255, abs=1e-5)
    assert c[27, 27].item() == pytest.approx(100 / 255, abs=1e-5)
    c[13, 13] = c[27, 27] = 0
    assert c.abs().max() < 1e-5


def test_labels_kept():
    a = _attack((3, 32, 32))
    assert a.clean_label
    y = torch.zeros(5, dtype=torch.long)
    assert torch.equal(a.poison_y(y, torch.arange(5)), y)


def test_backdoor_in_miniature(backdoored_run, clean_run, bdb_store):
    # measured (mnist5k, small-cnn, 15 epochs, lr 0.1, seed 0, pratio 0.1 = all 400 target images):
    #   magnitude 200 (this test): C-ACC 0.880, ASR 0.834, RA 0.163, non-target accuracy 0.977
    #   magnitude 100 (reference): C-ACC 0.913, ASR 0.438, RA 0.551; at pratio 0.05: 0.972 / 0.008
    #   clean model: C-ACC 0.977, non-target accuracy 0.977. The C-ACC loss is on clean test zeros:
    #   every training '0' carries the trigger (clean-label at pratio 0.1), the other classes keep theirs.
    # at SHORT_EPOCHS = 10 (session 9, one thread): C-ACC 0.871, ASR 0.853, RA 0.146, non-target accuracy 0.967;
    # clean model at 10 epochs: C-ACC 0.967 (at 15: 0.977)
    run = backdoored_run("ctrl", settings=MINIATURE_SETTINGS, epochs=EPOCHS)
    assert run.metrics["poisoned"] == 400
    assert run.metrics["asr"] >= 0.65
    assert run.metrics["cacc"] >= clean_run.metrics["cacc"] - 0.15
    assert _nontarget_accuracy(run, bdb_store) >= _nontarget_accuracy(clean_run, bdb_store) - 0.02


def test_clean_label_poison_is_target_class_only_and_labels_unchanged(backdoored_run, mnist5k):
    from bdcore.testing import poison_train_set

    run = backdoored_run("ctrl", settings=MINIATURE_SETTINGS, epochs=EPOCHS)
    pidx = torch.tensor(json.loads(run.file("poison_indices.json").read_text()), dtype=torch.long)
    assert len(pidx) == 400 and bool((mnist5k.y_train[pidx] == 0).all())
    ts = poison_train_set(mnist5k.x_train, mnist5k.y_train, _attack(mnist5k.shape, **MINIATURE_SETTINGS), pidx)
    assert torch.equal(ts.y, mnist5k.y_train)  # no label changed
    x, _ = ts.batch(pidx[:8])
    assert not torch.equal(x, mnist5k.x_train[pidx[:8]].float() / 255)  # but the images carry the trigger
