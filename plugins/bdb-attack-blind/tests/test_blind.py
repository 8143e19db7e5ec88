"""Blind Backdoors: pattern pixels, the loss rule (switch-on, weights, MGDA), and the backdoor in miniature."""

import math

import torch
import torch.nn.functional as F
from torch import nn

from bdcore import StepInfo

from bdb_attack_blind.attack import Blind, mgda_scales, pattern_position
from bdb_attack_blind.config import BlindConfig
from bdcore.testing import SHORT_EPOCHS as EPOCHS
from bdcore.testing import attack_context


def _attack(shape=(3, 32, 32), **settings):
    ctx = attack_context(shape=shape, dataset="x", model="y")
    return Blind(BlindConfig(**settings), ctx)


def test_pattern_pixels_at_32x32():
    out = _attack().apply_trigger(torch.full((2, 3, 32, 32), 0.5), train=False)
    box = out[:, :, 3:8, 23:26]
    expected = torch.tensor([
        [1.0, 0.0, 1.0],
        [0.5, 1.0, 0.5],
        [0.5, 0.5, 0.0],
        [0.5, 1.0, 0.5],
        [1.0, 0.0, 1.0],
    ])
    assert torch.equal(box, expected.expand(2, 3, 5, 3))
    rest = out.clone()
    rest[:, :, 3:8, 23:26] = 0.5
    assert torch.all(rest == 0.5)  # nothing outside the 5x3 box changes


def test_pattern_position_fits_28x28_and_scales_to_8x8():
    assert pattern_position(BlindConfig(), 28, 28) == (3, 23)  # same pixels as at 32x32
    assert pattern_position(BlindConfig(), 8, 8) == (1, 5)  # round(3/4)=1, round(23/4)=6 -> clipped to 8-3=5
    out = _attack(shape=(1, 28, 28)).apply_trigger(torch.zeros(1, 1, 28, 28), train=False)[0, 0]
    assert out[3, 23] == 1 and out[4, 24] == 1 and out[7, 25] == 1 and out.sum() == 6  # 6 white, 3 black pixels


def test_mgda_two_task_min_norm():
    # g1 = (1, 0), g2 = (0, 1): min-norm point of the segment is (1/2, 1/2)
    assert mgda_scales([torch.tensor([1.0, 0.0])], [torch.tensor([0.0, 1.0])]) == (0.5, 0.5)
    # g1 = (2, 0), g2 = (1, 0): both point the same way, the smaller gradient (g2) wins
    assert mgda_scales([torch.tensor([2.0, 0.0])], [torch.tensor([1.0, 0.0])]) == (0.0, 1.0)
    # g1 = (1, 0), g2 = (-1, 2): gamma = (g2-g1).g2 / |g1-g2|^2 = (2 + 4) / (4 + 4) = 0.75
    assert mgda_scales([torch.tensor([1.0, 0.0])], [torch.tensor([-1.0, 2.0])]) == (0.75, 0.25)


class _Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3 * 32 * 32, 10)

    def forward(self, x):
        return self.fc(x.flatten(1))


def test_loss_is_clean_until_running_loss_below_threshold_then_weighted():
    torch.manual_seed(0)
    model = _Tiny()
    x, y = torch.rand(8, 3, 32, 32), torch.randint(1, 10, (8,))
    clean = F.cross_entropy(model(x), y)
    bd = F.cross_entropy(model(_attack().apply_trigger(x, train=True)), torch.zeros(8, dtype=torch.long))
    step = StepInfo(0, 0, 10, torch.Generator().manual_seed(0))

    hook = _attack(loss_threshold=0.0).train_hook()  # never on: the clean loss only
    assert torch.isclose(hook.loss(model, x, y, step), clean)
    assert torch.isclose(hook.loss(model, x, y, step), clean)

    hook = _attack(loss_threshold=100.0).train_hook()
    assert torch.isclose(hook.loss(model, x, y, step), clean)  # first step: no running loss yet
    assert torch.isclose(hook.loss(model, x, y, step), 1.0 * clean + 0.9 * bd)
    assert hook.last_scales == (1.0, 0.9) and hook.active_steps == 1

    hook = _attack(loss_threshold=100.0, balance="mgda", mgda_normalize="none").train_hook()
    hook.loss(model, x, y, step)
    out = hook.loss(model, x, y, step)
    s_clean, s_bd = hook.last_scales
    assert math.isclose(s_clean + s_bd, 1.0) and 0 <= s_clean <= 1
    assert torch.isclose(out, s_clean * clean + s_bd * bd)


def test_copy_share_stamps_only_part_of_the_copy():
    torch.manual_seed(0)
    model = _Tiny()
    x, y = torch.rand(10, 3, 32, 32), torch.randint(1, 10, (10,))
    attack = _attack(loss_threshold=100.0, copy_share=None)  # the run's pratio: 1 of 10
    hook = attack.train_hook()
    step = StepInfo(0, 0, 10, torch.Generator().manual_seed(0))
    hook.loss(model, x, y, step)
    out = hook.loss(model, x, y, step)
    x_bd, y_bd = x.clone(), y.clone()
    x_bd[:1] = attack.apply_trigger(x[:1], train=True)
    y_bd[:1] = 0
    expected = 1.0 * F.cross_entropy(model(x), y) + 0.9 * F.cross_entropy(model(x_bd), y_bd)
    assert torch.isclose(out, expected)


def test_backdoor_in_miniature(backdoored_run, clean_run):
    # measured (mnist5k, small-cnn, 15 epochs, lr 0.1, seed 0, defaults: fixed weights 1.0 / 0.9,
    # threshold 1.0, whole copy stamped): C-ACC 0.969, ASR 1.000, RA 0.000; clean model C-ACC 0.977.
    # (clean weight 0.1: C-ACC 0.908, ASR 1.000.) Chance ASR is ~0.1.
    # Re-measured in session 5 (one thread): seed 0 C-ACC 0.947, ASR 1.000; seed 1 0.951 / 1.000 (clean 0.976).
    # at SHORT_EPOCHS = 10 (session 9, one thread): C-ACC 0.958, ASR 1.000, RA 0.000;
    # clean model at 10 epochs: C-ACC 0.967 (at 15: 0.977)
    run = backdoored_run("blind", epochs=EPOCHS)
    assert run.metrics["poisoned"] == 400  # the materialised poisoned training set (pratio, final trigger)
    assert run.metrics["asr"] >= 0.95
    assert run.metrics["cacc"] >= clean_run.metrics["cacc"] - 0.045
