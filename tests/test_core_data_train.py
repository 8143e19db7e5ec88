"""Datasets, augmentation, the poisoned training set and the trainer."""

import torch

from bdcore.data.augmentation import random_crop, random_hflip
from bdcore.config import TrainRecipe
from bdcore.api.resolve import build_model, load_dataset
from bdcore.bench.harness import split_reserve
from bdcore.data.trainset import TrainSet
from bdcore.nn.trainer import predict, train


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
    from bdcore.api.attack import Attack
    from bdcore.data.trainset import poison_train_set
    from bdcore.testing import attack_context

    class AddHalf(Attack):
        def apply_trigger(self, x, *, train, idx=None):
            return x + 0.5

    ctx = attack_context(num_classes=3, shape=(1, 2, 2), target=2, pratio=0.5, dataset="t", model="m")
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


def test_reserve_never_holds_a_poisoned_index():
    # a defense holding the training set must not also hold a poisoned image's clean original
    poisoned = torch.arange(0, 4000, 3)  # a third of the set
    r, v = split_reserve(4000, 0.05, 0.2, seed=0, exclude=poisoned)
    assert len(r) == 200 and len(v) == 40
    assert not set(r.tolist()) & set(poisoned.tolist())
    # without poisoned draws among its first choices the reserve is the same as before
    first = split_reserve(4000, 0.05, 0.2, seed=0)[0]
    assert torch.equal(split_reserve(4000, 0.05, 0.2, seed=0, exclude=torch.tensor([], dtype=torch.long))[0], first)


def test_a_reserve_larger_than_the_never_poisoned_images_is_one_error():
    import pytest

    from bdcore.errors import BdbError
    with pytest.raises(BdbError, match="lower reserve_ratio"):
        split_reserve(100, 0.5, 0.2, seed=0, exclude=torch.arange(60))


def test_defense_cache_lies_outside_the_run_store(monkeypatch, tmp_path):
    from bdcore.runs.store import cache_root
    monkeypatch.setenv("BDB_CACHE", str(tmp_path / "c"))
    assert cache_root() == tmp_path / "c"
    monkeypatch.delenv("BDB_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert cache_root() == tmp_path / "x" / "bdb"


def test_an_input_detector_sees_clean_and_triggered_inputs_shuffled_together(tmp_path):
    # all-clean then all-triggered batches would let a detector that looks at its batch tell them apart
    import numpy as np

    from bdcore.api.defense import DefenseOutput
    from bdcore.bench.evaluate import backdoor_test_set
    from bdcore.bench.metrics import detection
    from bdcore.runs.store import RunStore
    from bdcore.testing import _tiny_defense_setup

    store = RunStore(tmp_path)
    _, setup = _tiny_defense_setup("ft", store, "badnet")
    data, attack = setup.data, setup.attack
    x_bd, _, _ = backdoor_test_set(data, attack)
    clean_keys = {round(v, 3) for v in data.x_test.float().div(255).flatten(1).sum(1).tolist()}
    batches = []

    def detector(x):
        keys = x.flatten(1).sum(1)
        batches.append([round(v, 3) in clean_keys for v in keys.tolist()])
        return keys  # a score that is a function of the input alone

    out = DefenseOutput(input_detector=detector, threshold=0.0)
    metrics = {}
    setup.score(out, metrics)
    assert len(batches) > 1 and all(any(b) and not all(b) for b in batches[:-1])
    # the scores went back to their inputs: the same metrics as scoring clean then triggered in order
    want = torch.cat([data.x_test.float().div(255).flatten(1).sum(1), x_bd.flatten(1).sum(1)]).numpy()
    positive = np.r_[np.zeros(len(data.x_test), bool), np.ones(len(x_bd), bool)]
    assert metrics["input_detection"] == detection(want > 0.0, positive, want)


def test_predict_at_inference_speed_gives_the_plain_forward_pass_predictions():
    # channels-last and batches of EVAL_BATCH must not change a prediction; the model comes back contiguous
    from bdcore.api.registry import registry
    from bdcore.nn.trainer import predict

    torch.manual_seed(0)
    model = registry().get("model", "preact-resnet18").load()(10, 3, 32).eval()
    x = torch.randint(0, 256, (40, 3, 32, 32), dtype=torch.uint8)
    with torch.no_grad():
        plain = model(x.float() / 255).argmax(1)
    assert torch.equal(predict(model, x, batch_size=16, device=torch.device("cpu")), plain)
    assert all(p.is_contiguous() for p in model.parameters())
