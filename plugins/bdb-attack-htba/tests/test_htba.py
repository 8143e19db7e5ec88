"""HTBA: the patch and its placement, the one-to-one matching, the feature-collision optimisation,
labels kept (the attack in miniature fails: README)."""

import json

import pytest
import torch

from bdb_attack_htba.attack import features, greedy_match, optimise_poisons, paste, patch_image, place_for
from bdb_attack_htba.config import HTBAConfig

# the miniature: the 5-epoch surrogate of the other surrogate attacks (quick recipe lr 0.1, shared through
# the artifact cache) and 20 optimisation steps per batch of 100 poisons (the reference: 5000)
MINI = {"surrogate_epochs": 5, "surrogate_lr": 0.1, "iterations": 20}


def _attack(shape=(1, 28, 28), **settings):
    from bdcore.testing import attack_context, spec_of

    ctx = attack_context(shape=shape)
    return spec_of("attack", "htba").load()(HTBAConfig(**settings), ctx)


def test_patch_is_the_seeded_pattern_scaled_with_the_image():
    from bdcore import random_pattern

    p = patch_image(HTBAConfig(), (3, 32, 32))
    assert p.shape == (3, 8, 8) and torch.equal(p, random_pattern((3, 8, 8), 0))
    assert patch_image(HTBAConfig(), (1, 28, 28)).shape == (1, 7, 7)  # round(8 * 28 / 32)
    assert not torch.equal(patch_image(HTBAConfig(pattern_seed=1), (3, 32, 32)), p)


def test_paste_overwrites_exactly_the_square_at_each_corner():
    patch = torch.arange(4.0).view(1, 2, 2) / 10
    x = torch.ones(2, 1, 4, 5)
    out = paste(x, patch, torch.tensor([0, 2]), torch.tensor([3, 1]))
    assert torch.equal(out[0, 0, 0:2, 3:5], patch[0]) and torch.equal(out[1, 0, 2:4, 1:3], patch[0])
    changed = (out != 1).sum(dim=(1, 2, 3))
    assert changed.tolist() == [4, 4]
    assert float(out[0, 0, 0, 3]) == 0.0 and abs(float(out.sum()) - (2 * 16 + 2 * 0.6)) < 1e-5


def test_greedy_matching_takes_the_closest_pair_first():
    d = torch.tensor([[1.0, 2.0], [0.5, 3.0]])
    assert greedy_match(d).tolist() == [1, 0]  # (1, 0) at 0.5 first, then row 0 gets the column left
    d = torch.tensor([[4.0, 1.0, 9.0], [2.0, 0.1, 8.0], [7.0, 6.0, 5.0]])
    assert greedy_match(d).tolist() == [0, 1, 2]  # 0.1 -> (1, 1); then 4 -> (0, 0); then (2, 2)
    assert sorted(greedy_match(torch.rand(6, 6)).tolist()) == list(range(6))  # one-to-one


def test_test_time_places_are_random_per_sample_but_fixed():
    r, c = place_for(torch.tensor([5, 0, 5, 99]), 0, 7, 28, 28)
    assert r[0] == r[2] and c[0] == c[2]
    assert int(r.max()) <= 21 and int(c.max()) <= 21 and int(r.min()) >= 0
    rows, _ = place_for(torch.arange(200), 0, 7, 28, 28)
    assert len(set(rows.tolist())) > 15  # spread over the 22 possible rows
    a = _attack()
    x = torch.zeros(3, 1, 28, 28)
    out = a.test_trigger(x, torch.tensor([1, 2, 1]))
    assert torch.equal(out[0], out[2]) and (out != 0).sum() > 0
    assert (out[0] != 0).sum() <= 49  # only the 7x7 patch
    assert torch.equal(_attack(test_location="bottom-right").apply_trigger(x, train=False)[:, :, :21, :], x[:, :, :21])


def test_a_test_sample_gets_the_same_triggered_image_whatever_batch_it_is_in():
    # the place is a function of (seed, index) alone: no other sample of the batch, nor the batch's
    # largest index, moves it (it used to: sample 3 got column 16 or 2 by its batch)
    a = _attack()
    x = torch.rand(6, 1, 28, 28)
    idx = torch.tensor([3, 40, 7, 1000, 12, 5])
    whole = a.test_trigger(x, idx)
    alone = torch.cat([a.test_trigger(x[i:i + 1], idx[i:i + 1]) for i in range(6)])
    pairs = torch.cat([a.test_trigger(x[i:i + 2], idx[i:i + 2]) for i in range(0, 6, 2)])
    shuffled = a.test_trigger(x.flip(0), idx.flip(0)).flip(0)
    assert torch.equal(whole, alone) and torch.equal(whole, pairs) and torch.equal(whole, shuffled)
    r1, c1 = place_for(torch.tensor([3]), 0, 7, 28, 28)
    r2, c2 = place_for(torch.tensor([3, 10_000]), 0, 7, 28, 28)
    assert (int(r1), int(c1)) == (int(r2[0]), int(c2[0]))
    assert not torch.equal(place_for(torch.arange(500), 1, 7, 28, 28)[0], place_for(torch.arange(500), 0, 7, 28, 28)[0])


def test_poisons_stay_in_the_ball_and_move_towards_patched_sources_in_feature_space():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 6, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(2),
                                torch.nn.Flatten(), torch.nn.Linear(24, 3)).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    targets = torch.rand(8, 1, 10, 10) * 0.5
    sources = torch.rand(32, 1, 10, 10) * 0.5 + 0.25
    patch = torch.ones(1, 3, 3)
    cfg = HTBAConfig(iterations=60, lr=0.5, eps=64.0)
    z = optimise_poisons(model, targets, sources, patch, cfg, torch.Generator().manual_seed(0))
    assert (z - targets).abs().max() <= 64 / 255 + 1e-6 and z.min() >= 0 and z.max() <= 1
    rows = torch.tensor([0, 3, 7] * 11)[:32]
    fs = features(model, paste(sources, patch, rows, rows))
    before = torch.cdist(features(model, targets), fs).min(1).values.mean()
    after = torch.cdist(features(model, z), fs).min(1).values.mean()
    assert after < 0.4 * before  # measured 0.394 -> 0.111
    again = optimise_poisons(model, targets, sources, patch, cfg, torch.Generator().manual_seed(0))
    assert torch.equal(z, again)


def test_poison_images_replace_training_samples_without_patch_and_keep_labels():
    a = _attack()
    a._set(torch.tensor([2, 5]), torch.full((2, 1, 28, 28), 51, dtype=torch.uint8))
    x = torch.zeros(3, 1, 28, 28)
    out = a.poison_x(x, torch.tensor([5, 3, 2]))
    assert torch.allclose(out[0], torch.full((1, 28, 28), 0.2)) and torch.equal(out[1], x[1])
    y = torch.tensor([0, 0, 0])
    assert torch.equal(a.poison_y(y, torch.tensor([5, 3, 2])), y) and a.clean_label


def test_clean_label_run_changes_no_label(backdoored_run, mnist5k):
    from safetensors.torch import load_file

    run = backdoored_run("htba", settings=MINI, epochs=1)  # the poisons do not depend on the victim's recipe
    pidx = torch.tensor(json.loads(run.file("poison_indices.json").read_text()))
    assert len(pidx) == int((mnist5k.y_train == 0).sum()) == 400  # every target image, at 0.1
    assert torch.all(mnist5k.y_train[pidx] == 0)  # drawn from the target class, whose label they keep
    state = load_file(str(run.file("attack_state.safetensors")))
    assert torch.equal(state["poison_index"], pidx)
    diff = (state["poisons"].int() - mnist5k.x_train[pidx].int()).abs()
    assert int(diff.max()) <= 17 and int(diff.max()) >= 15  # L-inf 16/255 (+1 level from truncation)


@pytest.mark.xfail(strict=True, reason="no backdoor forms in the mnist5k miniature: the poisons collide with patched "
                                       "sources on the surrogate only (15-epoch victim: ASR 0.003, README)")
def test_backdoor_in_miniature(backdoored_run):
    # a victim of SHORT_EPOCHS on the cached surrogate and poisons (the other tests here train one epoch on them):
    # C-ACC 0.938, ASR 0.008 (AVX2, seed 0); 0.925, 0.013 (AVX-512, seed 1). With the test place a function of
    # (seed, index) alone (issue 26): AVX-512 seeds 0 / 1 / 2: C-ACC 0.933 / 0.925 / 0.952, ASR 0.013 / 0.022 / 0.013;
    # AVX2 seed 0: 0.938 / 0.009
    from bdcore.testing import SHORT_EPOCHS

    run = backdoored_run("htba", settings=MINI, epochs=SHORT_EPOCHS)
    assert run.metrics["cacc"] >= 0.9
    assert run.metrics["asr"] >= 0.5


def test_second_run_reuses_the_surrogate_and_the_poisons(backdoored_run):
    backdoored_run("htba", settings=MINI, epochs=1)
    again = backdoored_run("htba", settings=MINI, pratio=0.05, epochs=1)
    meta = json.loads(again.file("meta.json").read_text())
    assert [(u["name"], u["built"]) for u in meta["artifacts"]] == [("surrogate", False), ("htba-poisons", False)]
