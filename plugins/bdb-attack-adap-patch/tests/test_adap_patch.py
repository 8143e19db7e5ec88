"""Adaptive-Patch: patch geometry and opacity on hand-computed values, payload/cover labels, the backdoor in miniature."""

import json

import torch

from bdcore.testing import attack_context
from bdb_attack_adap_patch.attack import AdapPatch, make_patches, patch_boxes, stamp_patches
from bdb_attack_adap_patch.config import AdapPatchConfig

# measured on mnist5k/small-cnn (15 epochs, lr 0.1, seed 0), cover rate = poisoning rate, C-ACC/ASR/RA
# (clean model: C-ACC 0.977; its ASR on the adap-patch test trigger 0.000):
#   pratio 0.01 (40 payload + 40 cover): 0.978 / 0.304 / 0.532
#   pratio 0.02 (80 + 80):               0.974 / 0.847 / 0.149
#   pratio 0.05 (200 + 200):             0.973 / 1.000 / 0.000   <- used below
PRATIO = 0.05


def test_patch_boxes_at_reference_and_mnist_size():
    # 32x32: side 5, 1 pixel from the border, corners in the order TL, TR, BL, BR
    assert patch_boxes(4, 32, 32, 5) == [(1, 1, 5), (1, 26, 5), (26, 1, 5), (26, 26, 5)]
    # 28x28: side round(5 * 28 / 32) = 4, margin 1
    assert patch_boxes(4, 28, 28, 5) == [(1, 1, 4), (1, 23, 4), (23, 1, 4), (23, 23, 4)]
    patterns, masks = make_patches(4, (3, 32, 32), 5, 0)
    assert masks.sum() == 4 * 25 and float(masks.sum(0).max()) == 1.0  # four disjoint 5x5 squares
    assert not torch.equal(patterns[0, :, 1:6, 1:6], patterns[1, :, 1:6, 26:31])  # distinct patterns
    assert set(patterns.unique().tolist()) == {0.0, 1.0}


def test_stamp_opacity_by_hand():
    # x = 0.6; patch 0 (pattern 1 on its box) at opacity 0.5 -> 0.6 + 0.5 * (1 - 0.6) = 0.8;
    # a pattern-0 pixel at opacity 0.3 -> 0.6 - 0.3 * 0.6 = 0.42; outside the boxes x stays 0.6
    x = torch.full((1, 1, 4, 4), 0.6)
    t = torch.zeros(2, 1, 4, 4)
    m = torch.zeros(2, 1, 4, 4)
    t[0, :, 0, 0] = 1.0
    m[0, :, 0, 0] = 1.0
    m[1, :, 3, 3] = 1.0
    out = stamp_patches(x, t, m, torch.tensor([[0.5, 0.3]]))[0, 0]
    assert abs(out[0, 0].item() - 0.8) < 1e-6 and abs(out[3, 3].item() - 0.42) < 1e-6
    assert torch.allclose(out[1:3], torch.full((2, 4), 0.6))
    full = stamp_patches(x, t, m, torch.tensor([[1.0, 1.0]]))[0, 0]
    assert full[0, 0] == 1.0 and full[3, 3] == 0.0


def test_training_samples_carry_one_patch_test_inputs_all():
    a = AdapPatch(AdapPatchConfig(), attack_context(seed=7, pratio=0.02))
    idx = torch.arange(1000)
    chosen = a.chosen_patches(idx)
    assert bool((chosen.sum(1) == 1).all()) and torch.equal(chosen, a.chosen_patches(idx))
    counts = chosen.sum(0)
    assert int(counts.min()) > 200  # every patch is used (about 250 each)
    x = torch.full((4, 1, 28, 28), 0.6)
    out = a.apply_trigger(x, train=True, idx=idx[:4])
    for b in range(4):
        j = int(chosen[b].nonzero())
        alpha = a.config.train_alphas[j]
        m = a.masks[j, 0].bool()
        assert torch.allclose(out[b, 0][m], 0.6 + alpha * (a.patterns[j, 0][m] - 0.6))
        assert bool((out[b, 0][~m] == 0.6).all())
    test = a.apply_trigger(x, train=False)
    union = a.masks.sum(0)[0].bool()
    assert torch.equal(test[0, 0][union], a.patterns.sum(0)[0][union])  # full opacity: the pattern itself
    assert bool((test[0, 0][~union] == 0.6).all())
    some = AdapPatch(AdapPatchConfig(test_patches=[1, 3]), attack_context(seed=7, pratio=0.02))
    only = some.apply_trigger(x, train=False)
    assert bool((only[0, 0][a.masks[0, 0].bool()] == 0.6).all())


def test_payload_gets_target_and_cover_keeps_label(mnist5k):
    a = AdapPatch(AdapPatchConfig(), attack_context(seed=7, pratio=0.02))
    y = mnist5k.y_train
    pidx = a.poison_indices(y, torch.Generator().manual_seed(0))
    cover = a.cover_idx
    assert len(pidx) == 160 and len(cover) == 80
    is_cover = torch.isin(pidx, cover)
    assert int((~is_cover).sum()) == 80  # payload, drawn from every sample as the reference does
    new = a.poison_y(y[pidx], pidx)
    assert torch.equal(new[is_cover], y[pidx][is_cover])
    assert bool((new[~is_cover] == 0).all())


def test_backdoor_in_miniature(backdoored_run, clean_run, bdb_store):
    # measured at pratio 0.05 (+ 0.05 cover): C-ACC 0.973, ASR 1.000, RA 0.000; clean model C-ACC 0.977
    run = backdoored_run("adap-patch", pratio=PRATIO)
    assert run.metrics["poisoned"] == 400  # 200 payload + 200 cover
    assert run.metrics["asr"] >= 0.95
    assert run.metrics["cacc"] >= clean_run.metrics["cacc"] - 0.02
    from bdcore.testing import load_attack_run

    _, _, data, attack, _, pidx = load_attack_run(run.run_id, bdb_store)
    assert json.loads(run.file("poison_indices.json").read_text()) == pidx.tolist()
    y = data.y_train[pidx]
    new = attack.poison_y(y, pidx)
    is_cover = torch.isin(pidx, attack.cover_idx)
    assert int(is_cover.sum()) == 200
    assert torch.equal(new[is_cover], y[is_cover]) and bool((new[~is_cover] == 0).all())
