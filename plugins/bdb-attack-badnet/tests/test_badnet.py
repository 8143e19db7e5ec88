"""BadNets: trigger math on hand-computed values, and the backdoor in miniature."""

import torch

from bdb_attack_badnet.attack import patch_mask
from bdb_attack_badnet.config import BadNetConfig


def test_patch_at_reference_resolution_is_rows_and_cols_29_to_31():
    m = patch_mask(BadNetConfig(), 32, 32)[0, 0]
    expected = torch.zeros(32, 32)
    expected[29:32, 29:32] = 1
    assert torch.equal(m, expected)


def test_patch_area_resized_to_28x28():
    # output pixel i averages reference rows floor(i*32/28) .. ceil((i+1)*32/28)-1:
    # i=27 -> rows 30,31 (both patch) = 1; i=26 -> rows 29,30 = 1; i=25 -> rows 28,29 = 1/2.
    m = patch_mask(BadNetConfig(), 28, 28)[0, 0]
    assert m[27, 27] == 1 and m[26, 26] == 1
    assert m[25, 27] == 0.5 and m[25, 25] == 0.25
    assert m[:25].sum() == 0 and m[:, :25].sum() == 0


def test_trigger_sets_patch_to_white(mnist5k):
    from bdcore.testing import spec_of
    from bdcore.attack import AttackContext

    ctx = AttackContext(10, (3, 32, 32), 0, 0.1, False, 0, torch.device("cpu"), "x", "y", None)
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
