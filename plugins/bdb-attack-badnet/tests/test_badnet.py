"""BadNets: trigger math on hand-computed values, and the backdoor in miniature."""

import torch

from PIL import Image
import numpy as np

from bdb_attack_badnet.attack import resized_trigger, trigger_image
from bdb_attack_badnet.config import BadNetConfig


def test_patch_at_reference_resolution_is_rows_and_cols_29_to_31():
    t = trigger_image(BadNetConfig(), 1)[0]
    expected = torch.zeros(32, 32, dtype=torch.uint8)
    expected[29:32, 29:32] = 255
    assert torch.equal(t, expected)
    assert torch.equal(resized_trigger(BadNetConfig(), (1, 32, 32))[0], expected)


def test_trigger_resized_to_28x28_is_pillows_bilinear():
    # the reference resizes its 32x32 uint8 trigger with Pillow's bilinear filter; hand values on the
    # bottom-right corner: 95 on the diagonal pixel (25, 25), 156 on the rest of row/column 25, 255 inside
    t = resized_trigger(BadNetConfig(), (1, 28, 28))[0]
    assert t[25, 25] == 95 and t[25, 26] == 156 and t[26, 25] == 156 and t[25, 27] == 156
    assert t[26, 26] == 255 and t[27, 27] == 255
    assert t[:25].sum() == 0 and t[:, :25].sum() == 0
    src = np.zeros((32, 32), np.uint8)
    src[29:, 29:] = 255
    pil = np.asarray(Image.fromarray(src, mode="L").resize((28, 28), Image.BILINEAR))
    assert np.array_equal(t.numpy(), pil)


def test_28x28_corner_overwrites_a_black_image_with_the_resized_values():
    from bdcore.testing import attack_context, spec_of

    ctx = attack_context(dataset="x", model="y")
    attack = spec_of("attack", "badnet").load()(BadNetConfig(), ctx)
    out = attack.apply_trigger(torch.zeros(1, 1, 28, 28), train=False)[0, 0] * 255
    assert round(float(out[25, 25])) == 95 and round(float(out[25, 27])) == 156  # not blended: overwritten
    # a grey image: the pixels where the trigger is > 0 take the trigger's value, even where it is darker
    out = attack.apply_trigger(torch.full((1, 1, 28, 28), 200 / 255), train=False)[0, 0] * 255
    assert round(float(out[25, 25])) == 95 and round(float(out[24, 24])) == 200


def test_trigger_sets_patch_to_white(mnist5k):
    from bdcore.testing import attack_context, spec_of

    ctx = attack_context(shape=(3, 32, 32), dataset="x", model="y")
    attack = spec_of("attack", "badnet").load()(BadNetConfig(), ctx)
    x = torch.full((2, 3, 32, 32), 0.25)
    out = attack.apply_trigger(x, train=False)
    assert torch.all(out[:, :, 29:, 29:] == 1.0)
    assert torch.all(out[:, :, :29] == 0.25) and torch.all(out[:, :, :, :29] == 0.25)


def test_backdoor_in_miniature(backdoored_run, clean_run):
    # measured (mnist5k, small-cnn, 15 epochs, lr 0.1, seed 0): C-ACC 0.970, ASR 0.997; clean 0.97x
    run = backdoored_run("badnet")
    assert run.metrics["poisoned"] == 400
    assert run.metrics["asr"] >= 0.95
    assert run.metrics["cacc"] >= clean_run.metrics["cacc"] - 0.02
