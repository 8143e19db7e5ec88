"""Core pieces added for DBD, D-BR and D-ST: the contrastive loss, trust marks in labels, the
projection and linear-probe wrappers, the SimCLR/FCT transformations, the FCT separation and the
BatchNorm re-estimation (DBD, MCR); and the LGA isolation of ABL and NAB."""

import math

import torch
from torch import nn

from bdcore import (LinearProbe, Projected, SmallCNN, affine_warp, center_similarity, color_jitter, contrastive_loss,
                    fct, fct_scores, mark_untrusted, random_resized_crop, read_trust, recalibrate_bn, rotate_translate,
                    sensitivity_split, train)
from bdcore.config import TrainRecipe
from bdcore.data.trainset import TrainSet

L = math.log(2 + math.e)  # log-sum-exp of the three other similarities (0, 1, 0) of an anchor in the toy batch


def test_simclr_loss_on_two_orthogonal_images():
    z = torch.eye(2)  # view 1 == view 2; each anchor's only positive is its other view, similarity 1
    assert abs(float(contrastive_loss(z, z, temperature=1.0)) - (L - 1)) < 1e-6
    # temperature / base_temperature scales the loss
    assert abs(float(contrastive_loss(z, z, temperature=1.0, base_temperature=0.5)) - 2 * (L - 1)) < 1e-6


def test_supcon_and_semi_supervised_positives():
    z, same = torch.eye(2), torch.tensor([3, 3])
    # one label: every other embedding is a positive: mean log-prob (1 - 3L) / 3
    assert abs(float(contrastive_loss(z, z, same, temperature=1.0)) - (L - 1 / 3)) < 1e-6
    # sample 1 untrusted: its anchors keep only the other view (L - 1); sample 0's keep all three (L - 1/3)
    semi = contrastive_loss(z, z, same, torch.tensor([True, False]), temperature=1.0)
    assert abs(float(semi) - (L - 2 / 3)) < 1e-6
    # anchors "one": the first view's anchors only
    assert abs(float(contrastive_loss(z, z, same, torch.tensor([True, False]), 1.0, anchors="one"))
               - (L - 2 / 3)) < 1e-6


def test_trust_marks_round_trip():
    y = torch.tensor([0, 4, 9, 0])
    marked = mark_untrusted(y, torch.tensor([False, True, True, False]))
    assert marked.tolist() == [0, -5, -10, 0]
    labels, trusted = read_trust(marked)
    assert labels.tolist() == [0, 4, 9, 0] and trusted.tolist() == [True, False, False, True]


def test_fct_and_the_split_on_hand_numbers():
    assert fct(torch.tensor([[1.0, 2.0], [0.0, 0.0]]), torch.tensor([[1.0, 0.0], [0.0, 3.0]])).tolist() == [2.0, 4.5]
    clean, poison = sensitivity_split(torch.tensor([5.0, 1.0, 3.0, 2.0, 4.0]), 0.4, 0.2)
    assert clean.nonzero().flatten().tolist() == [1, 3] and poison.nonzero().flatten().tolist() == [0]


def test_fct_scores_are_zero_without_a_transformation_and_positive_with_one():
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))  # penultimate features = the flattened image
    x = torch.zeros(3, 1, 4, 4, dtype=torch.uint8)
    x[:, :, 0, 0] = 255  # a corner pixel: rotation moves it
    data = TrainSet(x, torch.zeros(3, dtype=torch.long))
    assert fct_scores(model, data, 0, degrees=0, translate=0).tolist() == [0.0, 0.0, 0.0]
    assert (fct_scores(model, data, 0) > 0).all()


def test_center_similarity():
    assert float(center_similarity(torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0]]), torch.tensor([0, 0, 1]))) == 0
    # centres (1, 0) and (1, 1): cosine 1/sqrt(2) twice among four entries
    got = float(center_similarity(torch.tensor([[1.0, 0.0], [1.0, 1.0]]), torch.tensor([0, 1])))
    assert abs(got - 2 / math.sqrt(2) / 4) < 1e-6


def test_transformations_reduce_to_the_identity():
    x = torch.rand(4, 3, 8, 8)
    g = torch.Generator().manual_seed(0)
    eye = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]).expand(4, 2, 3)
    assert torch.allclose(affine_warp(x, eye), x, atol=1e-6)
    assert torch.allclose(random_resized_crop(x, g, (1.0, 1.0), (1.0, 1.0)), x, atol=1e-6)
    assert torch.allclose(rotate_translate(x, g, 0.0, 0.0), x, atol=1e-6)
    assert torch.equal(color_jitter(x, g, p=0.0), x)
    r = rotate_translate(x, g)
    assert r.shape == x.shape and not torch.allclose(r, x)


def test_linear_probe_trains_the_head_only_and_projected_is_normalised():
    torch.manual_seed(0)
    model = SmallCNN(num_classes=3, in_channels=1, image_size=8, width=4)
    data = TrainSet(torch.randint(0, 256, (32, 1, 8, 8), dtype=torch.uint8), torch.randint(0, 3, (32,)))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    probe = LinearProbe(model)
    train(probe, data, TrainRecipe(epochs=1, batch_size=8, channels_last=False), seed=0,
          params=probe.head_parameters())
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"fc.weight", "fc.bias"}  # no conv weight, no BN statistic moved
    z = Projected(model, dim=5)(torch.rand(6, 1, 8, 8))
    assert z.shape == (6, 5) and torch.allclose(z.norm(dim=1), torch.ones(6), atol=1e-5)


def test_standardized_linear_probe_folds_into_the_models_last_layer():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 3))
    model.train()(torch.randn(16, 1, 3, 4))  # non-trivial BN running statistics
    x = torch.randn(8, 1, 3, 4)
    frozen = [p.detach().clone() for p in model[:4].parameters()]
    bn_mean = model[2].running_mean.clone()
    mean, std = torch.randn(5), torch.rand(5) + 0.5
    probe = LinearProbe(model, mean, std)
    with torch.no_grad():
        model[4].weight.normal_()
        model[4].bias.normal_()
        expected = model[4]((model[:4].eval()(x) - mean) / std)  # BN on its running statistics
    model.train()
    assert torch.allclose(probe(x), expected, atol=1e-6)            # the trunk runs in eval mode
    assert torch.equal(model[2].running_mean, bn_mean)              # and leaves the BN statistics alone
    probe.fold()
    assert torch.allclose(model.eval()(x), expected, atol=1e-5)
    assert all(torch.equal(a, b) for a, b in zip(frozen, model[:4].parameters()))


# LGA isolation (bdcore.lib.isolation, shared by ABL and NAB): the training overrides reach the trainer
def test_lga_isolate_passes_its_training_overrides(monkeypatch):
    import bdcore.api.defense
    from bdcore import lga_isolate

    seen = []
    monkeypatch.setattr(bdcore.api.defense, "fine_tune", lambda model, data, recipe, seed, hooks=(), **o: seen.append(o))
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    data = TrainSet(torch.zeros(6, 1, 2, 2, dtype=torch.uint8), torch.tensor([0, 1, 2, 0, 1, 2]))
    recipe = TrainRecipe(epochs=9, lr=0.1, augment=True)
    lga_isolate(model, data, recipe, 0, gamma=0.5, epochs=3, ratio=0.5, augment=False)
    lga_isolate(model, data, recipe, 0, gamma=0.5, epochs=3, ratio=0.5, lr=0.01)
    lga_isolate(model, data, recipe, 0, gamma=0.5, epochs=3, ratio=0.5, schedule="cosine", train_batch_size=64)
    assert seen == [{"epochs": 3, "schedule": "constant", "augment": False},
                    {"epochs": 3, "schedule": "constant", "lr": 0.01},  # None: the recipe's augmentation
                    {"epochs": 3, "schedule": "cosine", "batch_size": 64}]


def test_lga_settings_give_lga_isolate_its_arguments(monkeypatch):
    import bdcore.api.defense
    from bdcore import LGASettings, lga_isolate

    class Mine(LGASettings):  # a defense redeclares a field to change its default
        lga_batch_size: int | None = 64

    seen = []
    monkeypatch.setattr(bdcore.api.defense, "fine_tune", lambda model, data, recipe, seed, hooks=(), **o: seen.append((hooks, o)))
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    data = TrainSet(torch.zeros(6, 1, 2, 2, dtype=torch.uint8), torch.tensor([0, 1, 2, 0, 1, 2]))
    c = Mine(gamma=0.2, isolation_ratio=0.5, lga_schedule="cosine")
    assert LGASettings().lga_options() == {"gamma": 0.5, "epochs": 20, "ratio": 0.01, "lr": 0.01,
                                           "train_batch_size": None, "schedule": "constant", "augment": False}
    isolated, _ = lga_isolate(model, data, TrainRecipe(epochs=9, lr=0.1), 0, **c.lga_options())
    hooks, overrides = seen[0]
    assert hooks[0].gamma == 0.2 and int(isolated.sum()) == 3
    assert overrides == {"epochs": 20, "schedule": "cosine", "lr": 0.01, "batch_size": 64, "augment": False}


def test_recalibrate_bn_sets_the_plain_average_over_the_data():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 9, 3))
    bn = model[1]
    bn.running_mean.fill_(5.0)                     # stale statistics (e.g. from mixed-up images)
    bn.running_var.fill_(9.0)
    x = torch.randint(0, 256, (10, 1, 3, 3), dtype=torch.uint8)
    data = TrainSet(x, torch.zeros(10, dtype=torch.long), hflip=False)
    recalibrate_bn(model, data, batch_size=4)     # batches of 4, 4 and 2
    with torch.no_grad():
        h = model[0](x.float() / 255)
    assert not model.training and bn.momentum == 0.1
    # the plain (cumulative) average of the three batches' means, not a momentum-weighted one
    batch_means = [h[s:s + 4].mean((0, 2, 3)) for s in (0, 4, 8)]
    assert torch.allclose(bn.running_mean, torch.stack(batch_means).mean(0), atol=1e-5)
    assert int(bn.num_batches_tracked) == 3
