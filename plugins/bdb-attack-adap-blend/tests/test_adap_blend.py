"""Adaptive-Blend: piece masks and blend on hand-computed values, payload/cover labels, the backdoor in miniature."""

import json

import torch

from bdcore.testing import attack_context
from bdb_attack_adap_blend.attack import AdapBlend, blend, piece_map, piece_masks
from bdb_attack_adap_blend.config import AdapBlendConfig
from bdcore.testing import SHORT_EPOCHS as EPOCHS

# measured on mnist5k/small-cnn (15 epochs, lr 0.1, seed 0), cover rate = poisoning rate, C-ACC/ASR/RA
# (clean model: C-ACC 0.977; its ASR on the adap-blend test trigger 0.082):
#   pratio 0.003 (12 payload + 12 cover, the paper's CIFAR-10 rate): 0.977 / 1.000 / 0.000
#   pratio 0.005 (20 + 20):   0.977 / 1.000 / 0.000
#   pratio 0.01  (40 + 40):   0.972 / 1.000 / 0.000   <- used below
#   pratio 0.02  (80 + 80):   0.977 / 1.000 / 0.000
#   pratio 0.05  (200 + 200): 0.973 / 1.000 / 0.000
PRATIO = 0.01


def test_piece_map_is_a_grid():
    pm = piece_map(4, 4, 4)  # 2 x 2 grid of 2 x 2 pieces
    assert torch.equal(pm, torch.tensor([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]]))
    pm = piece_map(16, 28, 28)  # 4 x 4 grid of 7 x 7 pieces
    assert pm[6, 6] == 0 and pm[7, 7] == 5 and pm[27, 27] == 15 and pm[0, 27] == 3
    assert torch.equal(torch.bincount(pm.flatten()), torch.full((16,), 49))


def test_masked_blend_by_hand():
    # x = 0.5 everywhere, trigger = 1 on the left half, 0 on the right; pieces 0 and 3 kept, alpha 0.15:
    # kept & left: 0.5 + 0.15 * (1 - 0.5) = 0.575; kept & right: 0.5 + 0.15 * (0 - 0.5) = 0.425; dropped: 0.5
    x = torch.full((1, 1, 4, 4), 0.5)
    t = torch.zeros(1, 4, 4)
    t[:, :, :2] = 1.0
    mask = piece_masks(torch.tensor([[True, False, False, True]]), piece_map(4, 4, 4))
    out = blend(x, t, 0.15, mask)[0, 0]
    assert torch.allclose(out[:2, :2], torch.full((2, 2), 0.575))
    assert torch.allclose(out[:2, 2:], torch.full((2, 2), 0.5))
    assert torch.allclose(out[2:, :2], torch.full((2, 2), 0.5))
    assert torch.allclose(out[2:, 2:], torch.full((2, 2), 0.425))
    # full trigger at test, alpha 0.2: 0.5 + 0.2 * (1 - 0.5) = 0.6 and 0.5 - 0.2 * 0.5 = 0.4
    full = blend(x, t, 0.2)[0, 0]
    assert torch.allclose(full[:, :2], torch.full((4, 2), 0.6)) and torch.allclose(full[:, 2:], torch.full((4, 2), 0.4))


def test_training_poison_carries_half_the_pieces_deterministically():
    a = AdapBlend(AdapBlendConfig(), attack_context(seed=7, pratio=0.02))
    idx = torch.arange(500)
    keep = a.kept_pieces(idx)
    assert bool((keep.sum(1) == 8).all())  # 16 pieces, mask rate 0.5
    assert torch.equal(keep, a.kept_pieces(idx))
    assert len({tuple(r.tolist()) for r in keep}) > 400  # subsets differ between samples
    x = torch.rand(3, 1, 28, 28)
    out = a.apply_trigger(x, train=True, idx=torch.tensor([5, 6, 7]))
    changed = (out != x)[:, 0]
    pm = a.pmap
    for b, i in enumerate((5, 6, 7)):
        k = keep[i]
        assert not bool(changed[b][~k[pm]].any())  # dropped pieces untouched
    test = a.apply_trigger(x, train=False)
    assert torch.allclose(test, 0.8 * x + 0.2 * a.pattern)


def test_payload_gets_target_and_cover_keeps_label(mnist5k):
    a = AdapBlend(AdapBlendConfig(), attack_context(seed=7, pratio=0.02))
    y = mnist5k.y_train
    pidx = a.poison_indices(y, torch.Generator().manual_seed(0))
    cover = a.cover_idx
    assert len(pidx) == 160 and len(cover) == 80  # 2% payload + 2% cover of 4,000
    assert bool(torch.isin(cover, pidx).all())
    payload = pidx[~torch.isin(pidx, cover)]
    # the payload is drawn from every sample, as the reference does (target-class ones included)
    assert len(payload) == len(pidx) - len(cover)
    new = a.poison_y(y[pidx], pidx)
    is_cover = torch.isin(pidx, cover)
    assert torch.equal(new[is_cover], y[pidx][is_cover])
    assert bool((new[~is_cover] == 0).all())
    b = AdapBlend(AdapBlendConfig(cover_ratio=0.005), attack_context(seed=7, pratio=0.02))
    assert len(b.poison_indices(y, torch.Generator().manual_seed(0))) == 80 + 20


def test_backdoor_in_miniature(backdoored_run, clean_run, bdb_store):
    # measured at pratio 0.01 (+ 0.01 cover): C-ACC 0.972, ASR 1.000, RA 0.000; clean model C-ACC 0.977
    # at SHORT_EPOCHS = 10 (session 9, one thread): C-ACC 0.969, ASR 1.000, RA 0.000;
    # clean model at 10 epochs: C-ACC 0.967 (at 15: 0.977)
    run = backdoored_run("adap-blend", pratio=PRATIO, epochs=EPOCHS)
    assert run.metrics["poisoned"] == 80  # 40 payload + 40 cover
    assert run.metrics["asr"] >= 0.95
    assert run.metrics["cacc"] >= clean_run.metrics["cacc"] - 0.02
    # the stored run rebuilds the cover set: cover samples keep their labels, payload samples get the target
    from bdcore.testing import load_attack_run

    _, _, data, attack, _, pidx = load_attack_run(run.run_id, bdb_store)
    assert json.loads(run.file("poison_indices.json").read_text()) == pidx.tolist()
    y = data.y_train[pidx]
    new = attack.poison_y(y, pidx)
    is_cover = torch.isin(pidx, attack.cover_idx)
    assert int(is_cover.sum()) == 40
    assert torch.equal(new[is_cover], y[is_cover]) and bool((new[~is_cover] == 0).all())
