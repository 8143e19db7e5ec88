"""Datasets, augmentation, the poisoned training set and the trainer."""

import torch

from bdcore.augmentation import random_crop, random_hflip
from bdcore.config import TrainRecipe
from bdcore.harness import build_model, load_dataset, split_reserve
from bdcore.poison import TrainSet
from bdcore.trainer import predict, train


def test_mnist5k_is_a_fixed_stratified_split():
    d = load_dataset("mnist5k")
    assert d.x_train.shape == (4000, 1, 28, 28) and d.x_test.shape == (1000, 1, 28, 28)
    assert d.x_train.dtype == torch.uint8
    assert torch.equal(torch.bincount(d.y_train), torch.full((10,), 400))
    assert torch.equal(torch.bincount(d.y_test), torch.full((10,), 100))
    assert int(d.x_train.max()) == 255 and not d.hflip


def test_digits():
    d = load_dataset("digits")
    assert d.x_train.shape == (1437, 1, 8, 8) and d.x_test.shape == (360, 1, 8, 8)
    assert int(d.x_train.max()) == 255


def test_random_crop_shifts_by_at_most_pad():
    x = torch.zeros(64, 1, 8, 8)
    x[:, :, 4, 4] = 1
    out = random_crop(x, 2, torch.Generator().manual_seed(0))
    pos = out.flatten(1).argmax(1)
    rows, cols = pos // 8, pos % 8
    assert out.shape == x.shape and torch.all(out.sum((1, 2, 3)) == 1)
    assert rows.min() >= 2 and rows.max() <= 6 and cols.min() >= 2 and cols.max() <= 6
    assert len(set(pos.tolist())) > 5


def test_hflip_flips_about_half():
    x = torch.arange(4.0).view(1, 1, 1, 4).repeat(200, 1, 1, 1)
    out = random_hflip(x, torch.Generator().manual_seed(0))
    flipped = (out[:, 0, 0, 0] == 3).sum().item()
    assert 70 < flipped < 130 and torch.all((out[:, 0, 0, 0] == 0) | (out[:, 0, 0, 0] == 3))


def test_poisoned_train_set_poisons_only_chosen_indices_and_holds_nothing_else():
    from bdcore.attack import Attack, AttackContext
    from bdcore.poison import poison_train_set

    class AddHalf(Attack):
        def apply_trigger(self, x, *, train, idx=None):
            return x + 0.5

    ctx = AttackContext(3, (1, 2, 2), 2, 0.5, False, 0, torch.device("cpu"), "t", "m", None)
    x = torch.zeros(4, 1, 2, 2, dtype=torch.uint8)
    y = torch.tensor([0, 1, 2, 0])
    ts = poison_train_set(x, y, AddHalf(None, ctx), torch.tensor([1, 3]))
    xb, yb = ts.batch(torch.tensor([0, 1, 2, 3]))
    assert torch.equal(yb, torch.tensor([0, 2, 2, 2]))
    # 0.5 * 255 = 127.5 is stored as the uint8 level 127 (truncation, as the reference)
    assert ts.x.dtype == torch.uint8 and ts.x[1].unique().tolist() == [127]
    assert torch.equal(xb.flatten(1).mean(1), torch.tensor([0.0, 127 / 255, 0.0, 127 / 255]))
    sub = ts.subset(torch.tensor([False, True, True, True]))
    xs, ys = sub.batch(torch.arange(3))
    assert torch.equal(ys, torch.tensor([2, 2, 2])) and torch.equal(xs.flatten(1).mean(1), torch.tensor([127 / 255, 0.0, 127 / 255]))
    # sealed: images and labels only
    assert set(vars(ts)) == {"device", "x", "y", "hflip"}
    unrounded = poison_train_set(x, y, AddHalf(None, ctx), torch.tensor([1, 3]), quantize="none")
    assert unrounded.x.dtype == torch.float32 and float(unrounded.x[1].max()) == 0.5


def test_trainer_learns_and_is_deterministic():
    d = load_dataset("digits")
    recipe = TrainRecipe(epochs=3, lr=0.1, batch_size=64)
    weights = []
    for _ in range(2):
        torch.manual_seed(1)
        model = build_model("small-cnn", d)
        train(model, TrainSet(d.x_train, d.y_train, hflip=False), recipe, seed=5)
        weights.append({k: v.clone() for k, v in model.state_dict().items()})
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    acc = (predict(model, d.x_test) == d.y_test).float().mean().item()
    assert acc > 0.85  # measured 0.95+ after 3 epochs


def test_reserve_split_is_disjoint_and_seeded():
    r, v = split_reserve(4000, 0.05, 0.2, seed=0)
    # the whole 5% reserve (the reference trains on all of it); the validation split is a part of it
    assert len(r) == 200 and len(v) == 40 and set(v.tolist()) <= set(r.tolist())
    r2, v2 = split_reserve(4000, 0.05, 0.2, seed=0)
    assert torch.equal(r, r2) and torch.equal(v, v2)
    assert not torch.equal(split_reserve(4000, 0.05, 0.2, seed=1)[0], r)
