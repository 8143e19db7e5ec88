"""TrojanNN: the mask, the neuron ranking, the signed-step optimisation and the uint8 wrap-around on
hand-computed values, and the backdoor in miniature."""

import json

import torch

from bdb_attack_trojannn.attack import (add_trigger, mask_image, neuron_pgd, neuron_values, select_neurons,
                                       square_mask, to_trigger)
from bdb_attack_trojannn.config import TrojanNNConfig
from bdcore.testing import SHORT_EPOCHS as EPOCHS

# the miniature: a 5-epoch surrogate (quick recipe lr 0.1; the one lc, lf, narcissus and htba share); the
# trigger at the reference's settings (1000 signed steps: ~2 s)
MINI = {"surrogate_epochs": 5, "surrogate_lr": 0.1}


def _attack(shape=(1, 28, 28), **settings):
    from bdcore.testing import attack_context, spec_of

    ctx = attack_context(shape=shape)
    return spec_of("attack", "trojannn").load()(TrojanNNConfig(**settings), ctx)


def _tiny_model():
    """4 pixels -> 2 penultimate neurons (n0 = sum of the pixels, n1 = -pixel 0) -> 3 logits."""
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2, bias=False), torch.nn.Linear(2, 3)).eval()
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([[1.0, 1.0, 1.0, 1.0], [-1.0, 0.0, 0.0, 0.0]]))
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def test_default_mask_is_the_references_square_resized_with_pillow():
    sq = square_mask(1)[0]
    assert sq.shape == (224, 224) and sq[145:204, 145:204].eq(255).all() and sq.sum() == 59 * 59 * 255
    m32 = (mask_image(TrojanNNConfig(), (3, 32, 32)) * 255).round()
    m28 = (mask_image(TrojanNNConfig(), (1, 28, 28)) * 255).round()
    assert torch.equal(m32[0], m32[2])
    # 32x32 (Pillow bilinear of the 224x224 square, as the reference resizes it; equal pixel for pixel to
    # resource/trojannn/square.png resized): non-zero on rows and columns 20-29, 255 on 22-27, soft edges
    nz = m32[0].nonzero()
    assert len(nz) == 100 and nz.min() == 20 and nz.max() == 29 and m32[0].eq(255).sum() == 36
    assert m32[0, 20, 20] == 24 and m32[0, 21, 21] == 245 and m32[0, 22, 29] == 52 and m32[0, 29, 29] == 11
    # 28x28: non-zero on rows and columns 17-25, 255 on 19-24
    nz = m28[0].nonzero()
    assert len(nz) == 81 and nz.min() == 17 and nz.max() == 25 and m28[0].eq(255).sum() == 36
    assert m28[0, 17, 17] == 1 and m28[0, 18, 18] == 165 and m28[0, 19, 25] == 128 and m28[0, 25, 25] == 64


def test_neurons_are_ranked_by_the_sum_of_absolute_weights_over_all_classes():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 4), torch.nn.Linear(4, 3))
    with torch.no_grad():
        model[2].weight.copy_(torch.tensor([[1.0, -5.0, 0.0, 2.0], [1.0, 1.0, 0.0, -2.0], [1.0, 0.0, 3.0, 0.0]]))
    # column sums of |W|: 3, 6, 3, 4 -> neurons 1 and 3 (the target row 0 alone would give 3 and 0);
    # ties keep index order: the third is 0, then 2
    assert select_neurons(model, 2).tolist() == [1, 3]
    assert select_neurons(model, 4).tolist() == [1, 3, 0, 2]


def test_signed_steps_stay_in_the_ball_around_the_mask_and_leave_its_zeros():
    model = _tiny_model()
    start = torch.tensor([[[0.5, 0.0], [0.75, 0.25]]])
    calls = []
    model.register_forward_hook(lambda *_: calls.append(1))
    # n0 = 1.5 < 100: every kept pixel climbs by 0.1 per step; pixel (0, 1) is 0 in the mask and stays 0
    one = neuron_pgd(model, start, torch.tensor([0]), value=100.0, iterations=1, step=0.1, eps=0.3, tolerance=1e-3)
    assert torch.allclose(one, torch.tensor([[[0.6, 0.0], [0.85, 0.35]]]))
    many = neuron_pgd(model, start, torch.tensor([0]), value=100.0, iterations=10, step=0.1, eps=0.3, tolerance=1e-3)
    assert torch.allclose(many, torch.tensor([[[0.8, 0.0], [1.0, 0.55]]]))  # eps 0.3 around the mask, clip at 1
    # n1 = -pixel 0 driven to -100: pixel 0 climbs, the others get no gradient
    up = neuron_pgd(model, start, torch.tensor([1]), value=-100.0, iterations=10, step=0.1, eps=0.3, tolerance=1e-3)
    assert torch.allclose(up, torch.tensor([[[0.8, 0.0], [0.75, 0.25]]]))
    # the loss is already 0 at the mask (n0 = 1.5, exact in float32): one step (of sign 0), then it stops
    calls.clear()
    still = neuron_pgd(model, start, torch.tensor([0]), value=float(start.sum()), iterations=1000, step=0.1, eps=0.3,
                       tolerance=1e-3)
    assert torch.equal(still, start) and len(calls) == 1
    assert torch.allclose(neuron_values(model, (many > 0) * many, torch.tensor([0, 1])), torch.tensor([[2.35, -0.8]]))


def test_trigger_is_truncated_and_added_in_uint8_with_wrap_around():
    # the optimised image * 255 truncated (ToPILImage): 0.5 -> 127, 0.999 -> 254, 1 -> 255, 0 -> 0
    assert to_trigger(torch.tensor([0.5, 0.999, 1.0, 0.0])).tolist() == [127, 254, 255, 0]
    t = torch.tensor([[[100, 0], [200, 56]]], dtype=torch.uint8)
    keep = torch.tensor([[[True, False], [True, True]]])
    x = torch.tensor([[[200.0, 30.0], [10.0, 200.0]]]).div(255)[None]
    # 200 + 100 = 300 -> 44, 30 + 0 -> 30 (outside the mask), 10 + 200 -> 210, 200 + 56 = 256 -> 0
    wrap = add_trigger(x, t, keep, "add-wrap") * 255
    assert torch.allclose(wrap, torch.tensor([[[[44.0, 30.0], [210.0, 0.0]]]]), atol=1e-4)
    clip = add_trigger(x, t, keep, "add-clip") * 255
    assert torch.allclose(clip, torch.tensor([[[[255.0, 30.0], [210.0, 255.0]]]]), atol=1e-4)
    over = add_trigger(x, t, keep, "overwrite") * 255
    assert torch.allclose(over, torch.tensor([[[[100.0, 30.0], [200.0, 56.0]]]]), atol=1e-4)
    # the attack's own trigger: the default is the wrap-around, on the levels of the image
    a = _attack((1, 2, 2))
    a.trigger, a.mask = t, keep.float()
    assert torch.allclose(a.apply_trigger(x, train=False) * 255, wrap, atol=1e-4)
    y = torch.tensor([3, 7])
    assert torch.equal(a.poison_y(y, torch.arange(2)), torch.zeros(2, dtype=torch.long))  # dirty-label


def test_backdoor_in_miniature(backdoored_run, clean_run_short):
    # The reference's trigger (square mask, 1000 signed steps, uint8 wrap-around), mnist5k, small-cnn, 10 epochs,
    # lr 0.1, pratio 0.1; surrogate 5 epochs lr 0.1. Measured (AVX-512 seeds 0, 1, 2 and AVX2 seed 0, 1 thread):
    # C-ACC 0.961-0.970 (drop from the clean 10-epoch model 0.002-0.007), ASR 0.994-1.000, RA 0.000-0.004,
    # PSNR 13.22-13.28, SSIM 0.880-0.883. Before (8x8 corner overwrite, Adam, target-row neurons; AVX-512 s0/s1,
    # AVX2 s0/s2): C-ACC 0.963-0.970, ASR 1.000, PSNR 14.9-15.7.
    run = backdoored_run("trojannn", settings=MINI, epochs=EPOCHS)
    assert run.metrics["poisoned"] == 400
    assert run.metrics["asr"] >= 0.94
    assert run.metrics["cacc"] >= clean_run_short.metrics["cacc"] - 0.03


def test_second_run_reuses_the_surrogate(backdoored_run):
    backdoored_run("trojannn", settings=MINI, epochs=EPOCHS)
    again = backdoored_run("trojannn", settings=MINI, pratio=0.05, epochs=1)
    meta = json.loads(again.file("meta.json").read_text())
    assert [(u["name"], u["built"]) for u in meta["artifacts"]] == [("surrogate", False), ("trojannn-trigger", False)]
